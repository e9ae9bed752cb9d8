"""The job page: records kept on disk, merged across shards, and index.html in a real browser."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.io import report
from xai_cli.io.outputs import JsonLines

MODEL = str(FIXTURES / "digits.keras")
MARKED = str(FIXTURES / "digits_marked.keras")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ODD = "<script>.png"   # an input file name that must stay text on the page


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code in (0, 1), result.stderr
    return result


def kept_records(out):
    """What the runs wrote to OUT/records, by page name (no run here repeats an input)."""
    lines = [json.loads(line) for path in sorted((out / "records").glob("*.jsonl"))
             for line in path.read_text().splitlines()]
    return {Path(r["input"]).name + ("" if r["index"] is None else f"[{r['index']}]"): r
            for r in lines}


def page_records(page: str):
    start = page.index('<script type="application/json" id="records">') + 45
    return json.loads(page[start:page.index("</script>", start)])


# -- records on disk and the page's HTML, without a browser --

def test_shards_merge_the_last_record_wins_and_a_cut_line_is_ignored(tmp_path):
    first = JsonLines(report.records_path(tmp_path, "explain-shard-1-of-2"))
    for record in ({"input": "a.png", "index": None, "status": "error", "error": "boom"},
                   {"input": "x.npy", "index": 0, "status": "ok"},
                   {"input": "a.png", "index": None, "status": "ok", "score": 2.0}):
        first.write(record)
    second = report.records_path(tmp_path, "explain-shard-2-of-2")
    JsonLines(second).write({"input": "x.npy", "index": 1, "status": "ok"})
    with open(second, "a") as f:
        f.write('{"input": "b.png", "status": "o')   # killed in mid-line
    JsonLines(report.records_path(tmp_path, "evaluate")).write(
        {"input": "a.png", "index": None, "status": "ok", "aopc": {"lrp": 0.5}})
    merged = report.read_records(tmp_path)
    assert [(r["command"], r["input"], r["index"], r["status"]) for r in merged] == [
        ("evaluate", "a.png", None, "ok"), ("explain", "a.png", None, "ok"),
        ("explain", "x.npy", 0, "ok"), ("explain", "x.npy", 1, "ok")]
    assert merged[1]["score"] == 2.0


def test_a_resumed_run_appends_after_cutting_a_partial_line_and_a_new_run_starts_over(tmp_path):
    path = tmp_path / "records" / "explain.jsonl"
    path.parent.mkdir()
    path.write_text('{"input": "a.png"}\n{"input": "b.p')
    JsonLines(path, resume=True).write({"input": "c.png"})
    assert path.read_text() == '{"input": "a.png"}\n{"input":"c.png"}\n'
    JsonLines(path).write({"input": "d.png"})
    assert path.read_text() == '{"input":"d.png"}\n'


def test_names_labels_and_csv_cells_are_text_not_html(tmp_path):
    out = tmp_path / "<b>out"
    (out / "thumbs").mkdir(parents=True)
    (out / "thumbs" / "x.jpg").write_bytes(b"jpeg")
    (out / "summary.csv").write_text("method,aopc\n<img src=x onerror=alert(1)>,0.5\nrandom,0.1\n")
    records = [{"input": "/in/<script>alert(1)</script>.png", "index": None, "status": "ok", "predicted": 1,
                "predicted_label": "</script><!--", "score": 1.5, "relevance_sum": {"lrp": 1.0},
                "outputs": ["/elsewhere/thumbs/x.jpg", "/elsewhere/x.lrp.png"]},
               {"input": "&amp;.png", "index": None, "status": "error", "error": "<i>bad</i>"}]
    kept = JsonLines(report.records_path(out, "explain"))
    for record in records:
        kept.write(record)
    page = report.write(out).read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>out" not in page
    assert page.count("</script>") == 2 and "<!--" not in page
    shown = page_records(page)
    assert [r["input"] for r in shown] == [r["input"] for r in records]
    assert shown[0]["predicted_label"] == "</script><!--" and shown[1]["error"] == "<i>bad</i>"
    assert shown[0]["thumb"] == "thumbs/x.jpg" and shown[0]["maps"] == []   # no such heatmap


def test_report_on_a_folder_without_records_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no records (records/*.jsonl)" in result.stderr
    assert not (tmp_path / "index.html").exists()


def test_report_rebuilds_the_page_without_tensorflow(tmp_path):
    JsonLines(report.records_path(tmp_path, "explain")).write({"input": "a.png", "index": None,
                                                               "status": "ok"})
    code = ("import sys\nfrom click.testing import CliRunner\nfrom xai_cli.cli import main\n"
            f"result = CliRunner().invoke(main, ['report', {str(tmp_path)!r}])\n"
            "print(result.exit_code, result.stderr.strip(), 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["0", "xai:", "report:", str(tmp_path / "index.html"), "False"]


# -- the page in headless chromium, on folders written by the CLI --

@pytest.fixture(scope="module")
def browser():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("chromium not installed: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium not installed: pip install -e '.[dev]'")
    os.environ["SE_OFFLINE"] = "true"   # Selenium Manager must not download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def open_page(driver, out):
    driver.get((out / "index.html").as_uri())
    driver.get_log("browser")   # drop what an earlier page logged


def console_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def images(driver):
    """(src, naturalWidth) of every image on the page, each loaded first (lazy ones too)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1], all = [...document.images];
        all.forEach(i => { i.loading = "eager"; });
        Promise.all(all.map(i => i.decode().catch(() => null)))
            .then(() => done(all.map(i => [i.getAttribute("src"), i.naturalWidth])));""")


def cards(driver):
    """What each card on the current page shows: name, facts {key: [label, score]}, pictures."""
    return driver.execute_script("""
        return [...document.querySelectorAll("#cards .card")].map(c => ({
            name: c.querySelector(".name").firstChild.textContent,
            facts: Object.fromEntries([...c.querySelectorAll("dd")].map(d => [d.dataset.key,
                [d.querySelector(".label")?.textContent ?? null,
                 d.querySelector(".score")?.textContent ?? null]])),
            pictures: [...c.querySelectorAll("img")].map(i => i.alt)}));""")


def text(driver, element_id):
    return driver.find_element("id", element_id).text


def same_number(shown, value):
    return float(shown) == pytest.approx(value, rel=1e-3)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Two shards of an explain run into one folder, with a broken input, an input named
    like markup and labels with markup; then `xai report` merges them."""
    root = tmp_path_factory.mktemp("digits")
    images = root / "in"
    shutil.copytree(FIXTURES / "digits", images)
    shutil.copy(images / "digit_3_3.png", images / ODD)
    (images / "broken.png").write_bytes(b"not a png")
    labels = root / "labels.txt"
    labels.write_text("\n".join(["zero", "</script><b>one", *"23456789"]) + "\n")
    out = root / "out"
    for shard in ("1/2", "2/2"):
        result = run("explain", MODEL, images, "--labels", labels, "-m", "lrp", "-m", "sa",
                     "-b", "2", "--shard", shard, "-o", out)
        assert f"xai: report: {out / 'index.html'}" in result.stderr
    assert sorted(p.name for p in (out / "records").iterdir()) == [
        "explain-shard-1-of-2.jsonl", "explain-shard-2-of-2.jsonl"]
    assert run("report", out).exit_code == 0
    return out


@pytest.fixture(scope="module")
def thousand(tmp_path_factory):
    """1,000 inputs from one .npy batch and a missing file, explained by the plain gradient."""
    root = tmp_path_factory.mktemp("thousand")
    np.save(root / "x.npy", np.tile(np.load(FIXTURES / "digits_test_x.npy"), (2, 1, 1, 1)))
    run("explain", MODEL, root / "x.npy", root / "missing.png", "-p", "unit", "-m", "gradient",
        "-b", "250", "--labels", FIXTURES / "digits_labels.txt", "-o", root / "out")
    return root / "out"


def test_every_card_shows_its_record_and_every_picture_loads(browser, digits):
    records = kept_records(digits)
    open_page(browser, digits)
    shown = cards(browser)
    assert sorted(c["name"] for c in shown) == sorted(records) and ODD in records
    assert text(browser, "summary") == f"explain: {len(records)} inputs, 1 failed"
    for card in shown:
        record = records[card["name"]]
        if record["status"] == "error":
            assert card["facts"] == {"error": [record["error"], None]} and not card["pictures"]
            continue
        label, score = card["facts"]["predicted"]
        assert label == f"{record['predicted_label']} ({record['predicted']})"
        assert same_number(score, record["score"])
        label, score = card["facts"]["explained"]
        assert label == f"{record['target_label']} ({record['target']})"
        assert same_number(score, record["explained_score"])
        assert card["pictures"] == ["input", "lrp", "sa"]
    loaded = images(browser)
    assert len(loaded) == 3 * (len(records) - 1) and all(width > 0 for _, width in loaded)
    assert console_errors(browser) == []


def test_a_thousand_inputs_page_filter_and_sort(browser, thousand):
    records = kept_records(thousand)
    names = list(records)
    open_page(browser, thousand)
    assert len(records) == 1001
    assert text(browser, "summary") == "explain: 1001 inputs, 1 failed"
    assert text(browser, "page") == "page 1 of 11 (1001 inputs)"
    assert [c["name"] for c in cards(browser)] == names[:100]
    browser.find_element("id", "last").click()
    assert text(browser, "page") == "page 11 of 11 (1001 inputs)"
    assert [c["name"] for c in cards(browser)] == names[1000:]
    assert browser.find_element("id", "next").get_attribute("disabled")
    browser.find_element("id", "prev").click()
    assert [c["name"] for c in cards(browser)] == names[900:1000]
    assert all(width > 0 for _, width in images(browser))

    browser.find_element("id", "filter").send_keys("SEVEN")
    sevens = [n for n, r in records.items() if r.get("predicted_label") == "seven"]
    assert text(browser, "page") == f"page 1 of 1 ({len(sevens)} inputs)"
    assert [c["name"] for c in cards(browser)] == sevens
    browser.find_element("id", "filter").clear()
    browser.find_element("id", "errors").click()
    assert [c["name"] for c in cards(browser)] == ["missing.png"]
    browser.find_element("id", "errors").click()

    browser.find_element("css selector", "#sort option[value=high]").click()
    best = sorted((r for r in records.values() if "score" in r), key=lambda r: -r["score"])[:100]
    assert [same_number(c["facts"]["predicted"][1], r["score"])
            for c, r in zip(cards(browser), best)] == [True] * 100

    browser.find_element("css selector", "#sort option[value=class]").click()   # grouped, stable
    by_class = sorted(records, key=lambda name: records[name].get("predicted", 10 ** 9))[:100]
    assert [c["name"] for c in cards(browser)] == by_class
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def two_commands(tmp_path_factory):
    """evaluate and spray on the same 24 inputs, into one folder."""
    root = tmp_path_factory.mktemp("two")
    np.save(root / "x.npy", np.load(FIXTURES / "digits_marked_test_x.npy")[:24])
    common = (MARKED, root / "x.npy", "-p", "unit", "-t", "3", "-b", "8", "-o", root / "out")
    run("evaluate", *common, "--perturb", "8x8", "--steps", "2", "--replace", "mean")
    run("spray", *common)
    return root / "out"


def test_evaluate_and_spray_show_their_tables_figures_and_records(browser, two_commands):
    records = [json.loads(line) for command in ("evaluate", "spray")
               for line in (two_commands / "records" / f"{command}.jsonl").read_text().splitlines()]
    open_page(browser, two_commands)
    assert text(browser, "summary") == "evaluate: 24 inputs, 0 failed · spray: 24 inputs, 0 failed"
    summary, paired = browser.find_elements("css selector", "section table")[:2]
    assert [r.text.split()[0] for r in summary.find_elements("css selector", "tbody tr")] == [
        "lrp", "random"]
    assert [r.text.split()[:3] for r in paired.find_elements("css selector", "tbody tr")] == [
        ["mean", "lrp", "random"]]
    loaded = dict(images(browser))
    clusters = sorted({r["cluster"] for r in records if "cluster" in r})
    for name in ["curves.png", "eigengap.png", "embedding.png",
                 *(f"cluster_{k}_{kind}.png" for k in clusters for kind in ("mean", "members"))]:
        assert loaded[name] > 0, name
    assert all(width > 0 for width in loaded.values())
    for card, record in zip(cards(browser), records):
        assert card["name"] == f"x.npy[{record['index']}]" and card["pictures"] == ["input"]
        if "aopc" in record:
            assert [same_number(card["facts"][f"AOPC {m}"][1], v)
                    for m, v in record["aopc"].items()] == [True] * len(record["aopc"])
        else:
            assert card["facts"]["cluster"] == [str(record["cluster"]), None]
    browser.find_element("id", "filter").send_keys(f"cluster {clusters[-1]}")
    assert len(cards(browser)) == sum(r.get("cluster") == clusters[-1] for r in records)
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """Two of the shipped sample descriptions and one of 20,000 words, explained by the
    shipped text CNN."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path_factory.mktemp("text") / "out"
    long = out.parent / "long.txt"
    long.write_text(" ".join([(root / "sample_texts" / "tetrinetx.txt").read_text()] * 500))
    run("explain", root / "models" / "text_cnn.keras", root / "sample_texts" / "msmtp-mta.txt",
        root / "sample_texts" / "tetrinetx.txt", long, "--vocab", root / "models" / "text_vocab.txt",
        "--labels", root / "models" / "text_labels.txt", "-m", "lrp", "-m", "sa", "-o", out)
    return out


def cards_facts(shown):
    return {card["name"]: card["facts"] for card in shown}


def test_documents_show_word_heatmaps_linked_to_their_pages_and_top_words(browser, documents):
    records = kept_records(documents)
    open_page(browser, documents)
    shown = cards(browser)
    assert sorted(c["name"] for c in shown) == sorted(records) == ["long.txt", "msmtp-mta.txt",
                                                                   "tetrinetx.txt"]
    assert cards_facts(shown)["long.txt"]["read"][0] == "128 tokens, 22,372 words cut"
    assert "read" not in cards_facts(shown)["tetrinetx.txt"]
    for card in shown:
        record = records[card["name"]]
        assert card["pictures"] == ["lrp", "sa"]
        assert card["facts"]["lrp for"][0] == ", ".join(w for w, _ in record["top_words"]["lrp"]["for"])
        assert card["facts"]["sa most"][0].split(", ")[0] == record["top_words"]["sa"]["most"][0][0]
    links = browser.execute_script(
        'return [...document.querySelectorAll("#cards .card figure a")].map(a => a.getAttribute("href"))')
    assert sorted(links) == sorted(f"{stem}.{m}.html" for stem in ("long", "msmtp-mta", "tetrinetx")
                                   for m in ("lrp", "sa"))
    assert all(width > 0 for _, width in images(browser))
    heights = dict(browser.execute_script(   # a long document's too
        'return [...document.querySelectorAll("#cards img")].map(i => [i.getAttribute("src"), '
        'i.clientHeight])'))
    assert 0 < heights["long.lrp.png"] <= 240
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two of the shipped sample clips, explained by the shipped 3D CNN."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path_factory.mktemp("video") / "out"
    run("explain", root / "models" / "motion_c3d.keras", root / "sample_clips" / "up-down_0.gif",
        root / "sample_clips" / "left-right_frames", "--labels", root / "models" / "motion_labels.txt",
        "-m", "lrp", "-m", "sa", "-o", out)
    return out


def test_clips_show_the_clip_its_animated_heatmaps_relevance_over_time_and_top_frames(browser, clips):
    records = kept_records(clips)
    open_page(browser, clips)
    shown = cards(browser)
    assert sorted(c["name"] for c in shown) == sorted(records) == ["left-right_frames", "up-down_0.gif"]
    for card in shown:
        record = records[card["name"]]
        assert card["pictures"] == ["input", "lrp", "sa", "relevance over time"]
        assert card["facts"]["lrp frames"][0] == ", ".join(map(str, record["top_frames"]["lrp"]))
    loaded = dict(images(browser))
    assert sorted(loaded) == sorted(f"{folder}{stem}{suffix}" for stem in ("left-right_frames", "up-down_0")
                                    for folder, suffix in (("thumbs/", ".gif"), ("", ".lrp.gif"),
                                                           ("", ".sa.gif"), ("", ".time.png")))
    assert all(width > 0 for width in loaded.values())
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def signals(tmp_path_factory):
    """Two of the shipped GunPoint series explained by the shipped CNN, and a WAV at 8 kHz
    (its plot and its spectrogram) by a small audio model."""
    import wave

    import keras
    root = Path(__file__).resolve().parents[2]
    folder = tmp_path_factory.mktemp("signals")
    keras.utils.set_random_seed(0)
    L = keras.layers
    keras.Sequential([keras.Input((2000, 1)), L.Conv1D(4, 9, strides=4, activation="relu"),
                      L.GlobalAveragePooling1D(), L.Dense(2)]).save(folder / "audio.keras")
    tone = (np.sin(np.arange(4000) * 2 * np.pi * 440 / 8000) * 16000).astype(np.int16)
    with wave.open(str(folder / "tone.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tone.tobytes())
    out = folder / "out"
    run("explain", root / "models" / "gunpoint_cnn.keras", root / "sample_signals" / "gun_0.csv",
        root / "sample_signals" / "point_0.csv", "--labels", root / "models" / "gunpoint_labels.txt",
        "-m", "lrp", "-m", "sa", "-o", out)
    run("explain", folder / "audio.keras", folder / "tone.wav", "--sample-rate", 8000, "--offset", 0.25,
        "-m", "lrp", "-o", out, "--skip-existing")
    return out


def test_signals_show_their_plots_spectrograms_and_top_windows(browser, signals):
    records = kept_records(signals)
    open_page(browser, signals)
    shown = {card["name"]: card for card in cards(browser)}
    assert sorted(shown) == sorted(records) == ["gun_0.csv", "point_0.csv", "tone.wav"]
    assert shown["gun_0.csv"]["pictures"] == ["input", "lrp", "sa"]
    assert shown["tone.wav"]["pictures"] == ["input", "lrp", "lrp over the spectrogram"]
    first = records["gun_0.csv"]["top_windows"]["lrp"][0]["samples"]
    assert shown["gun_0.csv"]["facts"]["lrp windows"][0].startswith(f"{first[0]}-{first[1]}, ")
    assert shown["tone.wav"]["facts"]["lrp windows"][0].split(", ")[0].endswith(" s")
    loaded = dict(images(browser))
    assert sorted(loaded) == sorted([*(f"{folder}{stem}{suffix}" for stem in ("gun_0", "point_0")
                                       for folder, suffix in (("thumbs/", ".png"), ("", ".lrp.png"),
                                                              ("", ".sa.png"))),
                                     "thumbs/tone.png", "tone.lrp.png", "tone.lrp.spectrogram.png"])
    assert all(width > 0 for width in loaded.values())
    widths = dict(browser.execute_script(   # the plots as wide as the card, the thumbnail its own size
        'return [...document.querySelectorAll("#cards img")].map(i => [i.getAttribute("src"), '
        'i.clientWidth])'))
    assert widths["gun_0.lrp.png"] > 250 and widths["thumbs/gun_0.png"] <= 160
    assert console_errors(browser) == []
