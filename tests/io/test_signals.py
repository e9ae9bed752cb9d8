"""Signals: discovery, reading .npy, CSV and WAV files, channels, resampling, the model's window."""

import struct
import types
import wave

import numpy as np
import pytest
from PIL import Image

from xai_cli.errors import InputError, XaiError
from xai_cli.io import preprocess, signals
from xai_cli.io.inputs import InputItem

RAW = preprocess.resolve("raw")   # the identity: the model input is the signal's values


def _load(source, shape, timing=None, preprocessing=RAW, index=None):
    return signals.load(InputItem(str(source), "x", index), shape, preprocessing,
                        timing or signals.Timing())


def _wav(path, samples, width, rate=16000):
    """A PCM WAV of integer ``samples`` ``(T, C)`` in the range of ``width`` bytes, written
    by the standard library (8-bit WAV is unsigned, the others signed)."""
    samples = np.asarray(samples)
    if width == 1:
        data = (samples + 128).astype(np.uint8).tobytes()
    elif width == 3:
        data = samples.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = samples.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as file:
        file.setnchannels(samples.shape[1])
        file.setsampwidth(width)
        file.setframerate(rate)
        file.writeframes(data)
    return path


def _float_wav(path, samples, rate=8000):
    """A 32-bit float WAV (format 3), which the standard library cannot read."""
    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_timing_defaults_and_values():
    assert signals.Timing.parse(None, None) == signals.Timing(None, 0.0)
    assert signals.Timing.parse(8000, 0.5) == signals.Timing(8000.0, 0.5)


@pytest.mark.parametrize("rate,offset,option", [
    (0, None, "--sample-rate"), (-8000, None, "--sample-rate"), (float("nan"), None, "--sample-rate"),
    (float("inf"), None, "--sample-rate"), ("fast", None, "--sample-rate"),
    (None, -1, "--offset"), (None, float("inf"), "--offset"), (8000, float("nan"), "--offset"),
])
def test_timing_refuses_bad_options(rate, offset, option):
    with pytest.raises(XaiError, match=option) as caught:
        signals.Timing.parse(rate, offset)
    assert not isinstance(caught.value, InputError)   # an option's error stops the job


def test_npy_signal_is_read_as_it_is(tmp_path):
    values = np.arange(20, dtype=np.float64).reshape(10, 2) - 5
    np.save(tmp_path / "s.npy", values)
    items, problems = signals.discover([str(tmp_path / "s.npy")])
    assert [(i.stem, i.index) for i in items] == [("s", None)] and problems == []
    signal = signals.load(items[0], (6, 2), RAW, signals.Timing())
    assert signal.x.dtype == signal.raw.dtype == np.float32 and signal.x.shape == (6, 2)
    np.testing.assert_array_equal(signal.x, values[:6])
    np.testing.assert_array_equal(signal.raw, values[:6])
    assert signal.channels == ("channel 0", "channel 1")
    assert (signal.rate, signal.start, signal.source_length, signal.source_rate, signal.mixed) == \
        (None, 0, 10, None, None)


def test_npy_batch_gives_one_signal_per_row(tmp_path):
    batch = np.arange(3 * 8, dtype=np.float32).reshape(3, 8, 1)
    np.save(tmp_path / "batch.npy", batch)
    items, problems = signals.discover([str(tmp_path / "batch.npy")])
    assert [(i.stem, i.index) for i in items] == [("batch-0", 0), ("batch-1", 1), ("batch-2", 2)]
    assert problems == []
    signal = signals.load(items[1], (8, 1), RAW, signals.Timing())
    np.testing.assert_array_equal(signal.x, batch[1])
    assert signal.channels == ("signal",)
    np.save(tmp_path / "flat.npy", np.zeros(8))
    assert signals.discover([str(tmp_path / "flat.npy")])[1] == [
        (str(tmp_path / "flat.npy"), "expected (T,C) or (N,T,C) array, got shape (8,)")]


@pytest.mark.parametrize("values,problem", [
    (np.zeros((8, 1), np.complex64), "not a real number type"),
    (np.array([[0.0], [np.nan]] * 4), "NaN or Inf"),
    (np.array([[0.0], [np.inf]] * 4), "NaN or Inf"),
])
def test_npy_of_unusable_values_fails_alone(tmp_path, values, problem):
    np.save(tmp_path / "s.npy", values)
    with pytest.raises(InputError, match=problem):
        _load(tmp_path / "s.npy", (8, 1))


def test_csv_header_names_the_channels(tmp_path):
    (tmp_path / "s.csv").write_text("x, y\n1,2\n3,-4.5\n\n5e1,6\n")
    signal = _load(tmp_path / "s.csv", (3, 2))
    np.testing.assert_array_equal(signal.x, [[1, 2], [3, -4.5], [50, 6]])
    assert signal.channels == ("x", "y") and signal.source_length == 3 and signal.rate is None


def test_csv_without_header_is_all_data(tmp_path):
    (tmp_path / "s.csv").write_text("0\n2\n3\n4\n")
    signal = _load(tmp_path / "s.csv", (4, 1))
    np.testing.assert_array_equal(signal.x[:, 0], [0, 2, 3, 4])
    assert signal.channels == ("signal",)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_semicolons_and_tabs_are_recognised(tmp_path, delimiter):
    rows = ["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6"]
    (tmp_path / "s.csv").write_text("\r\n".join(delimiter.join(row) for row in rows) + "\r\n")
    signal = _load(tmp_path / "s.csv", (2, 3))
    np.testing.assert_array_equal(signal.x, [[1, 2, 3], [4, 5, 6]])
    assert signal.channels == ("a", "b", "c")


@pytest.mark.parametrize("text,problem", [
    ("a,b\n1,2\n\n3,x4\n", "line 4, column 2: 'x4' is not a number"),   # blank lines counted
    ("1,2\n3,\n", "line 2, column 2: empty cell"),
    ("a,b\n1,2\n3,4,5\n", "line 3 has 3 columns; line 1 has 2"),
    ("a,b\n1,2\n3\n", "line 3 has 1 column; line 1 has 2"),
    ("\n  \n", "empty file"),
    ("a,b\n\n", "no data rows: only the header on line 1"),
])
def test_bad_csv_fails_naming_the_place(tmp_path, text, problem):
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(InputError, match=problem):
        _load(tmp_path / "s.csv", (1, 2))


def test_a_long_csv_is_read_whole(tmp_path):
    values = np.random.default_rng(0).normal(size=(100_000, 3))
    np.savetxt(tmp_path / "long.csv", values, delimiter=",", header="a,b,c", comments="")
    signal = _load(tmp_path / "long.csv", (100, 3), signals.Timing(offset=99_900))
    assert signal.source_length == 100_000 and signal.start == 99_900
    np.testing.assert_allclose(signal.x, values[-100:], rtol=1e-6)


def test_wav_16_bit_mono_is_scaled_as_soundfile_scales_it(tmp_path):
    samples = np.array([[0], [1000], [-32768], [32767], [-1]] * 4)
    signal = _load(_wav(tmp_path / "s.wav", samples, 2, rate=8000), (20, 1))
    np.testing.assert_array_equal(signal.x, samples / 32768)
    assert signal.rate == signal.source_rate == 8000 and signal.channels == ("signal",)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_wav_stereo_of_other_widths(tmp_path, width):
    full = 2 ** (8 * width - 1)
    samples = np.array([[-full, full - 1], [0, 1], [full // 3, -full // 5], [-2, 7]])
    signal = _load(_wav(tmp_path / "s.wav", samples, width), (4, 2))
    np.testing.assert_allclose(signal.x, samples / full, rtol=1e-6)
    assert signal.channels == ("channel 0", "channel 1") and signal.mixed is None


def test_stereo_audio_is_mixed_down_for_a_one_channel_model(tmp_path):
    samples = np.array([[1000, 3000], [-2000, 0], [16384, 16384]])
    signal = _load(_wav(tmp_path / "s.wav", samples, 2), (3, 1))
    np.testing.assert_allclose(signal.x[:, 0], samples.mean(axis=1) / 32768)
    assert signal.mixed == 2 and signal.channels == ("signal",)


def test_channel_counts_that_differ_are_refused(tmp_path):
    _wav(tmp_path / "s.wav", np.zeros((4, 2)), 2)
    with pytest.raises(InputError, match="the signal has 2 channels; the model takes 3"):
        _load(tmp_path / "s.wav", (4, 3))
    (tmp_path / "s.csv").write_text("1,2\n3,4\n")   # only audio is mixed down
    with pytest.raises(InputError, match="the signal has 2 channels; the model takes 1"):
        _load(tmp_path / "s.csv", (2, 1))


def test_audio_is_resampled_to_the_models_rate(tmp_path):
    time = np.arange(16000) / 16000
    _wav(tmp_path / "a.wav", np.round(16000 * np.sin(2 * np.pi * 440 * time))[:, None], 2)
    signal = _load(tmp_path / "a.wav", (4000, 1), signals.Timing(8000, 0.25))
    assert (signal.rate, signal.source_rate, signal.source_length, signal.start) == (8000, 16000, 8000, 2000)
    expected = 16000 / 32768 * np.sin(2 * np.pi * 440 * (2000 + np.arange(4000)) / 8000)
    np.testing.assert_allclose(signal.x[:, 0], expected, atol=5e-3)   # the same 440 Hz


def test_offset_is_in_seconds_with_a_rate_and_in_samples_without(tmp_path):
    samples = np.arange(100)[:, None] * 100
    _wav(tmp_path / "s.wav", samples, 2, rate=50)
    audio = _load(tmp_path / "s.wav", (10, 1), signals.Timing(offset=0.5))
    assert audio.start == 25 and audio.rate == 50
    np.testing.assert_allclose(audio.raw[:, 0], samples[25:35, 0] / 32768)
    np.save(tmp_path / "s.npy", samples.astype(np.float32))
    array = _load(tmp_path / "s.npy", (10, 1), signals.Timing(offset=30))
    assert array.start == 30 and array.rate is None and array.x[0, 0] == 3000
    labelled = _load(tmp_path / "s.npy", (10, 1), signals.Timing(20, 0.5))   # labelled, not resampled
    assert labelled.start == 10 and labelled.rate == 20 and labelled.source_length == 100


def test_a_window_past_the_signal_is_refused_with_its_lengths(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((120, 1), np.float32))
    with pytest.raises(InputError, match=r"^the signal has 120 samples \(110 from --offset 10\); the model "
                                         r"takes 150: give a longer signal or an earlier --offset$"):
        _load(tmp_path / "s.npy", (150, 1), signals.Timing(offset=10))
    with pytest.raises(InputError, match=r"^the signal has 120 samples = 1\.2 s at 100 Hz; the model takes "
                                         r"150 = 1\.5 s: give a longer signal$"):
        _load(tmp_path / "s.npy", (150, 1), signals.Timing(100))


def test_a_fractional_offset_needs_a_rate(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((20, 1), np.float32))
    with pytest.raises(InputError, match="give --sample-rate to give it in seconds"):
        _load(tmp_path / "s.npy", (5, 1), signals.Timing.parse(None, 2.5))


def test_preprocessing_applies_per_channel(tmp_path):
    (tmp_path / "s.csv").write_text("a,b\n1,2\n3,10\n")
    preprocessing = preprocess.resolve(None, mean=(1, 2), std=(2, 4))
    signal = _load(tmp_path / "s.csv", (2, 2), preprocessing=preprocessing)
    np.testing.assert_allclose(signal.x, [[0, 0], [1, 2]])
    np.testing.assert_array_equal(signal.raw, [[1, 2], [3, 10]])


def test_discovery_searches_folders_in_natural_order(tmp_path):
    for name in ("s10.csv", "s2.csv"):
        (tmp_path / name).write_text("1\n2\n")
    np.save(tmp_path / "s1.npy", np.zeros((2, 1)))
    (tmp_path / "sub").mkdir()
    _wav(tmp_path / "sub" / "a.wav", np.zeros((4, 1)), 2)
    (tmp_path / "notes.txt").write_text("not a signal")
    Image.new("L", (4, 4)).save(tmp_path / "picture.png")
    items, problems = signals.discover([str(tmp_path)])
    assert [i.stem for i in items] == ["s1", "s2", "s10", "a"] and problems == []
    items, problems = signals.discover([str(tmp_path / "s*.csv")])
    assert [i.stem for i in items] == ["s2", "s10"] and problems == []
    (tmp_path / "empty").mkdir()
    names = [str(tmp_path / n) for n in ("picture.png", "none.csv", "empty", "notes.txt")]
    assert signals.discover(names) == ([], [
        (names[0], "is a picture, not a signal: the model takes (T, C)"), (names[1], "no such file"),
        (names[2], "no signal files (.npy, .csv, .wav) found" if signals.soundfile is None
         else f"no signal files ({', '.join(signals.SIGNAL_EXTENSIONS)}) found"),
        (names[3], f"not a signal file ({', '.join(signals.SIGNAL_EXTENSIONS)})")])


@pytest.mark.skipif(signals.soundfile is not None, reason="soundfile reads float WAV")
def test_without_soundfile_float_wav_says_what_to_install(tmp_path):
    with pytest.raises(InputError, match=r"a float WAV: reading it needs soundfile \(pip install "
                                         r"'xai\[audio\]', or pip install soundfile\)"):
        _load(_float_wav(tmp_path / "f.wav", np.zeros(8)), (8, 1))
    (tmp_path / "f.flac").write_bytes(b"fLaC")
    assert signals.discover([str(tmp_path / "f.flac")])[1] == [
        (str(tmp_path / "f.flac"), "reading .flac files needs soundfile: pip install 'xai[audio]'")]


def test_soundfile_reads_every_audio_file_when_installed(tmp_path, monkeypatch):
    calls = []

    def read(path, dtype, always_2d):
        calls.append((path, dtype, always_2d))
        return np.full((400, 2), 0.25, np.float32), 8000

    monkeypatch.setattr(signals, "soundfile", types.SimpleNamespace(read=read))
    signal = _load(_float_wav(tmp_path / "f.wav", np.zeros(8)), (4, 1), signals.Timing(4000, 0.025))
    assert calls == [(str(tmp_path / "f.wav"), "float32", True)]
    assert (signal.source_rate, signal.rate, signal.source_length, signal.start, signal.mixed) == \
        (8000, 4000, 200, 100, 2)
    np.testing.assert_allclose(signal.x, 0.25, atol=1e-3)   # resampled, the constant level kept


def test_unreadable_wav_fails_alone(tmp_path):
    (tmp_path / "s.wav").write_bytes(b"RIFF not a wave file")
    with pytest.raises(InputError, match="not a readable WAV file"):
        _load(tmp_path / "s.wav", (4, 1))
