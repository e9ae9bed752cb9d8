"""Train the shipped Vision Transformer: a small ViT on the digits the CNN learns from.

Same data, split, augmentation and optimiser as scripts/train_digits.py. Built from Keras
layers and ops only, the way Keras' ViT example builds one: 8x8 patches embedded by a
Conv2D with stride = kernel, a learned class token and learned position embeddings (each an
Embedding over ids computed from the input's shape: a functional model has no other place
for a learned tensor), pre-norm encoder blocks (LayerNormalization, MultiHeadAttention,
residual Add, GELU MLP), the class token read back with x[:, 0].

Writes models/digits_vit.keras and prints its test accuracy next to the CNN's.
Deterministic. Run: python scripts/train_digits_vit.py
"""

from pathlib import Path

import keras
import numpy as np
from digits_data import SIZE, splits
from keras import layers, ops
from train_digits import train

ROOT = Path(__file__).resolve().parent.parent
PATCH, WIDTH, HEADS, BLOCKS, MLP = 8, 48, 4, 3, 96
TOKENS = (SIZE // PATCH) ** 2 + 1   # the patches and the class token


def positions(x):
    """0, 1, 2, ... along the token axis, from the shape of ``x`` (batch, tokens, features)."""
    return ops.cumsum(ops.ones_like(x[..., 0], dtype="int32"), axis=1) - 1


def encoder_block(x, index):
    a = layers.LayerNormalization(epsilon=1e-6, name=f"block{index}_ln1")(x)
    a = layers.MultiHeadAttention(HEADS, WIDTH // HEADS, dropout=0.1, name=f"block{index}_attention")(a, a)
    x = layers.Add(name=f"block{index}_add1")([x, a])
    m = layers.LayerNormalization(epsilon=1e-6, name=f"block{index}_ln2")(x)
    m = layers.Dense(MLP, activation="gelu", name=f"block{index}_mlp1")(m)
    m = layers.Dropout(0.1, name=f"block{index}_dropout")(m)
    m = layers.Dense(WIDTH, name=f"block{index}_mlp2")(m)
    return layers.Add(name=f"block{index}_add2")([x, m])


def build_model() -> keras.Model:
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = layers.Conv2D(WIDTH, PATCH, strides=PATCH, name="patches")(image)
    x = layers.Reshape(((SIZE // PATCH) ** 2, WIDTH), name="tokens")(x)
    token = layers.Embedding(1, WIDTH, name="class_token")(ops.zeros_like(x[:, :1, 0], dtype="int32"))
    x = layers.Concatenate(axis=1, name="with_class")([token, x])
    x = layers.Add(name="with_position")([x, layers.Embedding(TOKENS, WIDTH, name="position")(positions(x))])
    for index in range(BLOCKS):
        x = encoder_block(x, index)
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = layers.Dense(10, name="head")(x[:, 0])
    return keras.Model(image, layers.Activation("softmax", name="softmax")(x), name="digits_vit")


def main():
    train_img, test_img, train_y, test_y = splits()
    x_train = train_img[..., None].astype(np.float32) / 255
    x_test = test_img[..., None].astype(np.float32) / 255
    model = train(x_train, train_y, epochs=60, build=build_model, learning_rate=1e-3)
    predicted = model.predict(x_test, verbose=0).argmax(-1)
    cnn = keras.saving.load_model(ROOT / "models" / "digits.keras")
    cnn_accuracy = (cnn.predict(x_test, verbose=0).argmax(-1) == test_y).mean()
    print(f"test accuracy on {len(test_y)} images: ViT {(predicted == test_y).mean():.4f}, "
          f"CNN (models/digits.keras) {cnn_accuracy:.4f}")
    plain = build_model()   # without optimizer state
    plain.set_weights(model.get_weights())
    plain.save(ROOT / "models" / "digits_vit.keras")
    print(f"digits_vit.keras: {(ROOT / 'models' / 'digits_vit.keras').stat().st_size / 1e6:.2f} MB, "
          f"{plain.count_params()} parameters")


if __name__ == "__main__":
    main()
