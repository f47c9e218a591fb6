"""Captions of MNIST digits in English and Chinese, with stroke attributes measured from each image.

The text-image models (clip, text2image) train on these: per image and per epoch
a fresh caption from templates, naming the digit as a numeral, an English word or a
Chinese character, sometimes with what the image itself shows:

- **ink** (bold / thin): the digit's total ink (the sum of its pixels) against the
  other images of the same digit: the heaviest 30% are "bold", the lightest 30%
  "thin" (a 1 has a third of an 8's ink, so the comparison is within a digit);
- **slant** (leaning right / left): the shear of the ink's second moments,
  ``-cov(row, column) / var(row)`` (the tangent of the lean; the quantity MNIST
  deskewing removes): right above 0.35 (about 19 degrees), left below -0.2.

Some templates are kept out of training (``HELD_OUT``), so zero-shot accuracy can
also be measured on phrasings the model has never seen.
"""

import numpy as np

from zoo.core.runtime.utf8 import TEXT_BYTES, encode_texts

EN_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ZH_CHARS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九")
LANGUAGES = ("en", "zh")

BOLD, THIN, PLAIN = 1, -1, 0
RIGHT, LEFT, UPRIGHT = 1, -1, 0
INK_FRACTION = 0.3
SLANT_RIGHT, SLANT_LEFT = 0.35, -0.2

INK_WORDS = {"en": {BOLD: ("bold", "thick", "heavy"), THIN: ("thin", "light", "fine")},
             "zh": {BOLD: ("粗体", "粗", "加粗", "笔画粗"), THIN: ("细体", "细", "纤细", "笔画细")}}
SLANT_WORDS = {"en": {RIGHT: "right", LEFT: "left"}, "zh": {RIGHT: "右", LEFT: "左"}}

# {d}: the digit (numeral or word), {a}: an ink word, {s}: a slant direction; {A}: "a"/"an" before what follows
TEMPLATES = {
    "en": {
        "digit": ["{d}", "the digit {d}", "the number {d}", "{A} handwritten {d}", "a digit: {d}",
                  "number {d}, handwritten"],
        "ink": ["{A} {a} {d}", "{A} {a} handwritten {d}", "the number {d} in {a} strokes", "{d}, written {a}"],
        "slant": ["{A} {d} leaning {s}", "{A} {d} slanted to the {s}", "{A} {a} {d} leaning {s}"],
    },
    "zh": {
        "digit": ["{d}", "数字{d}", "手写的{d}", "一个{d}", "手写数字{d}", "这是{d}"],
        "ink": ["一个{a}的{d}", "{a}的数字{d}", "{a}的手写{d}", "写得很{a}的{d}"],
        "slant": ["向{s}倾斜的{d}", "一个向{s}倾斜的{d}", "一个{a}的向{s}倾斜的{d}"],
    },
}
HELD_OUT = {  # phrasings never used in training: zero-shot on these tests generalisation
    "en": ["a picture of the number {d}", "this image shows {A} {d}", "{d} written by hand", "someone wrote {A} {d}"],
    "zh": ["一张{d}的图片", "图中写着{d}", "有人写了一个{d}", "这张图是数字{d}"],
}
CLASS_PROMPTS = {"en": "the digit {d}", "zh": "数字{d}"}  # the zero-shot headline prompts


def digit_name(digit, language, numeral=False):
    if numeral:
        return str(digit)
    return EN_WORDS[digit] if language == "en" else ZH_CHARS[digit]


def _article(following):
    return "an" if following[:1] in ("8", "e", "a", "i", "o", "u") and not following.startswith("one") else "a"


def fill(template, digit, language, *, numeral=False, ink=PLAIN, slant=UPRIGHT, word_choice=0):
    """One template filled in; ``ink``/``slant`` pick the attribute words the template asks for."""
    d = digit_name(digit, language, numeral)
    a = INK_WORDS[language][ink][word_choice % len(INK_WORDS[language][ink])] if ink != PLAIN else ""
    if "很{a}" in template and ink != PLAIN:  # "写得很粗": the one-character adjective only
        a = INK_WORDS[language][ink][1]
    s = SLANT_WORDS[language][slant] if slant != UPRIGHT else ""
    text = template.replace("{d}", d).replace("{a}", a).replace("{s}", s)
    if "{A}" in text:
        text = text.replace("{A}", _article(text[text.index("{A}") + 4:]))
    return text


def class_prompts(language, template=None):
    """The 10 prompts, one per digit, that zero-shot classification compares an image with."""
    return [fill(template or CLASS_PROMPTS[language], d, language) for d in range(10)]


def ink_prompt(digit, language, ink):
    """"a bold seven" / "一个粗体的七": the prompts of the bold-vs-thin measurement."""
    template = "{A} {a} {d}" if language == "en" else "一个{a}的{d}"
    return fill(template, digit, language, ink=ink)


def stroke_attributes(images, labels):
    """``(ink, slant)``, each int ``[n]`` in {-1, 0, 1}, measured from ``images`` ``[n, 28, 28(, 1)]``.

    Ink is compared within each digit of ``labels`` (see the module's docstring).
    """
    x = np.asarray(images, np.float64).reshape(len(images), 28, 28)
    labels = np.asarray(labels)
    mass = np.maximum(x.sum((1, 2)), 1e-6)
    rows, columns = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    row_mean = (x * rows).sum((1, 2)) / mass
    column_mean = (x * columns).sum((1, 2)) / mass
    row_var = np.maximum((x * (rows - row_mean[:, None, None]) ** 2).sum((1, 2)) / mass, 1e-6)
    covariance = (x * (rows - row_mean[:, None, None]) * (columns - column_mean[:, None, None])).sum((1, 2)) / mass
    shear = -covariance / row_var
    ink = np.zeros(len(x), np.int32)
    for digit in np.unique(labels):
        members = labels == digit
        low, high = np.quantile(mass[members], [INK_FRACTION, 1 - INK_FRACTION])
        ink[members & (mass >= high)] = BOLD
        ink[members & (mass <= low)] = THIN
    slant = np.where(shear > SLANT_RIGHT, RIGHT, np.where(shear < SLANT_LEFT, LEFT, UPRIGHT)).astype(np.int32)
    return ink, slant


def random_caption(rng, digit, ink, slant, language=None, templates=None):
    """A caption of one image: the digit, its ink and slant where the template mentions them."""
    language = language or LANGUAGES[rng.integers(2)]
    kinds = ["digit", "digit"] + (["ink", "ink"] if ink != PLAIN else []) + (["slant"] if slant != UPRIGHT else [])
    kind = kinds[rng.integers(len(kinds))]
    pool = (templates or TEMPLATES)[language][kind]
    template = pool[rng.integers(len(pool))]
    if kind == "slant" and "{a}" in template and ink == PLAIN:
        template = template.replace("{a} ", "").replace("一个{a}的", "一个")
    return fill(template, digit, language, numeral=bool(rng.random() < 0.3), ink=ink, slant=slant,
                word_choice=int(rng.integers(4)))


def random_captions(rng, count):
    """``count`` captions of random digits and attributes (test and example inputs)."""
    return [random_caption(rng, int(rng.integers(10)), int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
            for _ in range(count)]


def caption_rows(labels, ink, slant, seed, language=None):
    """A caption per image as int32 ``[n, 64]`` rows (UTF-8, zero padded), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    texts = [random_caption(rng, int(d), int(i), int(s), language) for d, i, s in zip(labels, ink, slant)]
    return encode_texts(texts, TEXT_BYTES), texts


def captioned_mnist(split="train", limit=None):
    """``(images [n, 28, 28, 1] in [0, 1], labels, ink, slant)`` of an MNIST split."""
    from zoo.core.data.datasets import mnist_images

    images, labels = mnist_images(split, limit=limit)
    ink, slant = stroke_attributes(images, labels)
    return images, labels, ink, slant


def captioned_dataset(split="train", *, batch_size, seed=0, epoch=0, limit=None, value_range=(0.0, 1.0),
                      shuffle=True, drop_remainder=True, data=None):
    """Batches of ``(images, text rows)``: a new caption per image each epoch, from ``(seed, epoch)`` only
    (so a resumed run sees what an uninterrupted one would)."""
    import tensorflow as tf

    from zoo.core.runtime.errors import BadInputError

    images, labels, ink, slant = data if data is not None else captioned_mnist(split, limit)
    if drop_remainder and batch_size > len(images):
        raise BadInputError(f"batch size {batch_size} is larger than the {len(images)} {split} images")
    rows, _ = caption_rows(labels, ink, slant, seed=[seed, epoch, 7])
    low, high = value_range
    dataset = tf.data.Dataset.from_tensor_slices((images * (high - low) + low, rows))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


_GLOSSARY = {  # the captions' Chinese, word by word, longest first: for picture titles (no Chinese font)
    "一个": "a", "一张": "a picture of", "手写数字": "handwritten digit", "数字": "the digit", "手写的": "handwritten",
    "手写": "handwritten", "这是": "this is", "写得很": "written", "笔画粗": "heavy-stroked", "笔画细": "thin-stroked",
    "粗体": "bold", "细体": "thin", "加粗": "bold", "纤细": "slender", "粗": "thick", "细": "thin",
    "向右倾斜": "leaning right", "向左倾斜": "leaning left", "图中写着": "the picture says", "有人写了": "someone wrote",
    "这张图是": "this picture is", "的图片": "(picture)", "的": "", **dict(zip(ZH_CHARS, EN_WORDS)),
}


def gloss(prompt):
    """An English rendering of a caption-style Chinese prompt ("一个粗体的七" -> "a bold seven"), or None
    where it has words outside the captions' vocabulary."""
    words, i = [], 0
    keys = sorted(_GLOSSARY, key=len, reverse=True)
    while i < len(prompt):
        if prompt[i].isascii():
            words.append(prompt[i])
            i += 1
            continue
        match = next((k for k in keys if prompt.startswith(k, i)), None)
        if match is None:
            return None
        words.append(f" {_GLOSSARY[match]} " if _GLOSSARY[match] else " ")
        i += len(match)
    return " ".join("".join(words).split())
