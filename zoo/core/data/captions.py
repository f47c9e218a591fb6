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

INK_WORDS = {"en": {BOLD: ("bold", "thick", "heavy", "dark"), THIN: ("thin", "light", "fine", "faint")},
             "zh": {BOLD: ("粗体", "粗", "加粗", "笔画粗"), THIN: ("细体", "细", "纤细", "笔画细")}}
SLANT_WORDS = {"en": {RIGHT: "right", LEFT: "left"}, "zh": {RIGHT: "右", LEFT: "左"}}

# === Sentences ===
# A caption is a sentence shape (a frame) around the digit's noun phrase ({np}). The noun phrase names the digit
# as a word, a numeral or the other language's word, with or without an article, neutral adjectives that say
# nothing the image shows, and the measured ink and slant before or after the digit. Frames come in families;
# HELD_OUT_FAMILIES are whole sentence shapes no training caption has, the measure of whether the text encoder
# found the digit in the sentence or learned the templates. Words that contain a digit's name ("phone", "weight",
# "一起") sit in the training fillers, so the encoder learns that "one" inside a word is not a one.
NEUTRAL_ADJECTIVES = {
    "en": ("handwritten", "small", "big", "little", "messy", "neat", "tidy", "scribbled", "quick", "careful",
           "shaky", "simple", "plain", "lovely", "ugly", "old", "nice", "strange", "clean", "tiny"),
    "zh": ("手写的", "小小的", "大大的", "潦草的", "工整的", "漂亮的", "简单的", "清楚的", "随手写的", "奇怪的"),
}
INK_AFTER = {"en": ("in {a} strokes", "written {a}", "with {a} lines", "drawn {a}"),
             "zh": ("，写得很{a}", "，笔画很{a}", "，字很{a}")}  # zh: the one-character adjective
SLANT_AFTER = {"en": ("leaning {s}", "slanted to the {s}", "tilted to the {s}", "that leans {s}",
                      "leaning to the {s}"),
               "zh": ("，向{s}倾斜", "，往{s}歪", "，向{s}斜")}
SLANT_BEFORE = {"en": ("{s}-leaning",), "zh": ("向{s}倾斜的", "往{s}歪的")}
FAMILIES = {
    "en": {
        "bare": ["{np}"],
        "statement": ["this is {np}", "it is {np}", "it's {np}", "here is {np}", "that is {np}", "it looks like {np}",
                      "there is {np} here", "we have {np}"],
        "picture": ["a picture of {np}", "an image of {np}", "a photo of {np}", "a scan of {np}",
                    "a drawing of {np}", "this image shows {np}"],
        "scene": ["{np} on a white page", "{np} on a black background", "{np} from the test set",
                  "{np} in the middle of the image", "{np}, scanned from a form", "{np} in a small box"],
        "label": ["label: {np}", "class = {np}", "answer: {np}", "{np} (label)", "caption: {np}"],
    },
    "zh": {
        "bare": ["{np}"],
        "statement": ["这是{np}", "它是{np}", "看起来像{np}", "这里有{np}", "图上是{np}", "我们有{np}"],
        "picture": ["{np}的图片", "一张{np}的照片", "{np}的扫描图", "这张图画的是{np}"],
        "scene": ["白纸上的{np}", "黑色背景上的{np}", "测试集里的{np}", "表格上扫描的{np}", "图中间的{np}"],
        "label": ["标签：{np}", "类别={np}", "答案：{np}", "{np}（标签）"],
    },
}
HELD_OUT_FAMILIES = {  # sentence shapes never trained on: zero-shot on these tests generalisation
    "en": {
        "question": ["is this {np}?", "could this be {np}?", "do you think it is {np}?", "is that {np} or not?"],
        "someone wrote": ["someone wrote {np}", "my sister drew {np} yesterday", "a student scribbled {np} on it"],
        "request": ["show me {np}", "please draw {np}", "find {np} for me", "I need {np}"],
    },
    "zh": {
        "question": ["这是{np}吗？", "这是不是{np}？", "你觉得这是{np}吗"],
        "someone wrote": ["有人写了{np}", "我妹妹昨天画了{np}", "学生在纸上写了{np}"],
        "request": ["给我看{np}", "请画{np}", "帮我找{np}"],
    },
}
HELD_OUT = {language: [frame for frames in HELD_OUT_FAMILIES[language].values() for frame in frames]
            for language in LANGUAGES}
HELD_OUT_NOUN_PHRASES = {"en": "{A} {d}", "zh": "一个{d}"}  # "someone wrote a seven" / "有人写了一个七"
PREFIXES = {"en": ("look, ", "hmm, ", "ok: ", "wow, ", "so ", "note: ", "well, ", "yes, "),
            "zh": ("看，", "嗯，", "哇，", "注意：", "好，")}
SUFFIXES = {  # the words that contain a digit's name are here on purpose (see above)
    "en": (".", "!", "...", " :)", ", I guess", ", probably", ", done in a hurry", ", scanned on a phone",
           ", all alone", ", often seen", " at an odd height", " on the network"),
    "zh": ("。", "！", "…", "吧", "，我猜", "，和上面的一样", "，看一下", "，一起看看", "，一定是"),
}
CLASS_PROMPTS = {"en": "the digit {d}", "zh": "数字{d}"}  # the zero-shot headline prompts

# === Words around the sentence that carry no digit ===
# A text encoder that reads bytes must also learn where a character starts: "妹" is the bytes E5 A6 B9, and B9 is
# also the middle byte of "九" (E4 B9 9D), so a CLIP trained on few Chinese characters read "我妹妹昨天画了一个一"
# ("my sister drew a one yesterday", held out) as a nine. A third of the captions therefore get a clause of
# ordinary words that say nothing about the image before or after them: Chinese from the 3,755 common
# characters of GB2312's first level, English from the 260 words below (everyday words, several holding a digit's
# name or a piece of one inside: "anyone", "often", "weight", "canine", "hour", "round"; a CLIP trained with a
# list a third as long read "do you think it is a one?" as a four). Neither has a number, an attribute word or a
# word of a held-out sentence family (tested), so the held-out families stay unseen.
NOISE_SHARE = 0.3
_NOT_NOISE_ZH = set("〇零一二三四五六七八九十百千万亿两壹贰叁肆伍陆柒捌玖拾佰仟个数字粗细体加笔画纤左右倾斜歪")
NOISE_WORDS_EN = tuple("""anyone everyone alone bone stone tone money honey lonely gone none done phone honest
    ozone zone cone throne often listen kitten attend content tennis bitten sweeten tent tender mitten written intent
    extent potent canine network artwork weight freight height house mouse round sound found ground cloud loud proud
    south mouth hour flour pour tour sour group soup count mountain fountain trouble double touch country cousin couch
    morning evening table window pencil paper coffee garden kitchen river bottle jacket rabbit yellow green blue
    orange office school homework notebook desk lamp chair door music quiet rainy sunny winter summer today tomorrow
    maybe again really almost early late fast slowly happy tired busy ready after before under above near inside
    outside friend brother mother father teacher class page row box form apple banana bread butter cheese milk water
    juice tea sugar salt pepper rice pasta pizza cake cookie candy chocolate car bus train plane bike boat ship road
    street bridge city town village park forest field farm beach island lake sea ocean hill valley desert dog cat
    bird fish horse cow pig sheep duck lion tiger bear wolf fox monkey red pink purple brown gray silver golden run
    jump swim sing dance play read cook eat drink sleep walk talk open close start stop wait try help bring carry
    build break fix clean wash paint send keep hold pull push turn move stay call monday tuesday friday weekend
    spring autumn noon night week month year minute because while though although perhaps very quite rather just
    still also only even never always sometimes usually""".split())


def _noise_characters_zh():
    """GB2312's first level (the 3,755 most used characters), less numbers, attribute and held-out frame
    characters."""
    held_out = {c for frames in HELD_OUT_FAMILIES["zh"].values() for frame in frames for c in frame}
    characters = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                character = bytes([high, low]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            if character not in _NOT_NOISE_ZH and character not in held_out:
                characters.append(character)
    return tuple(characters)


NOISE_CHARACTERS_ZH = _noise_characters_zh()


def noise_clause(rng, language):
    """A few words that carry no digit: 2-6 Chinese characters, or 1-3 English words."""
    if language == "zh":
        return "".join(rng.choice(NOISE_CHARACTERS_ZH, size=int(rng.integers(2, 7))))
    return " ".join(str(w) for w in rng.choice(NOISE_WORDS_EN, size=int(rng.integers(1, 4))))


def _with_noise(rng, text, language):
    clause = noise_clause(rng, language)
    joiners = ("", "，", "：", "。") if language == "zh" else (" ", ", ", ": ", ". ")
    joiner = _pick(rng, joiners)
    if rng.random() < 0.6:
        return clause + joiner + text
    return text + (joiner if joiner.strip() else _pick(rng, joiners[1:])) + clause


def digit_name(digit, language, numeral=False):
    if numeral:
        return str(digit)
    return EN_WORDS[digit] if language == "en" else ZH_CHARS[digit]


def _article(following):
    return "an" if following[:1].lower() in ("8", "e", "a", "i", "o", "u") and \
        not following.lower().startswith("one") else "a"


def fill(template, digit, language, *, numeral=False, ink=PLAIN, slant=UPRIGHT, word_choice=0):
    """A fixed phrase filled in: {d} the digit, {a} an ink word, {s} a slant direction, {A} "a"/"an" before
    what follows (the zero-shot and ink prompts; training captions come from :func:`random_caption`)."""
    d = digit_name(digit, language, numeral)
    a = INK_WORDS[language][ink][word_choice % len(INK_WORDS[language][ink])] if ink != PLAIN else ""
    s = SLANT_WORDS[language][slant] if slant != UPRIGHT else ""
    text = template.replace("{d}", d).replace("{a}", a).replace("{s}", s)
    if "{A}" in text:
        text = text.replace("{A}", _article(text[text.index("{A}") + 4:]))
    return text


def held_out_prompts(frame, language):
    """The 10 class prompts of one held-out frame: "someone wrote a seven", ..."""
    return [fill(frame.replace("{np}", HELD_OUT_NOUN_PHRASES[language]), d, language) for d in range(10)]


def class_prompts(language, template=None):
    """The 10 prompts, one per digit, that zero-shot classification compares an image with."""
    return [fill(template or CLASS_PROMPTS[language], d, language) for d in range(10)]


def ink_prompt(digit, language, ink):
    """"a bold seven" / "一个粗体的七": the prompts of the bold-vs-thin measurement."""
    template = "{A} {a} {d}" if language == "en" else "一个{a}的{d}"
    return fill(template, digit, language, ink=ink)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _digit_words(rng, digit, language):
    """The digit as the caption names it: mostly its word in the caption's language, else a numeral or (mixing
    the languages) the other language's word, sometimes inside "number ..." / "数字...". """
    roll = rng.random()
    other = "zh" if language == "en" else "en"
    name = (digit_name(digit, language) if roll < 0.6 else str(digit) if roll < 0.85
            else digit_name(digit, other))
    if rng.random() < 0.2:
        name = (_pick(rng, ("number ", "digit ")) + name if language == "en"
                else _pick(rng, ("数字", "数字 ")) + name)
    elif language == "en" and rng.random() < 0.05:
        name = f'"{name}"'
    return name


def _place_slant(rng, language, slant, before, after, before_share):
    """The slant as a word before the digit ("left-leaning", "向左倾斜的") or a phrase after it."""
    side = SLANT_WORDS[language][slant]
    if rng.random() < before_share:
        before.insert(0, _pick(rng, SLANT_BEFORE[language]).replace("{s}", side))
    else:
        after.append(_pick(rng, SLANT_AFTER[language]).replace("{s}", side))


def _noun_phrase_en(rng, digit, ink, slant, mention_ink, mention_slant):
    head = _digit_words(rng, digit, "en")
    before, after = [], []
    if rng.random() < 0.35:
        before += [str(a) for a in rng.choice(NEUTRAL_ADJECTIVES["en"], size=1 + int(rng.random() < 0.3),
                                              replace=False)]
    if mention_ink:
        word = _pick(rng, INK_WORDS["en"][ink])
        if rng.random() < 0.6:
            before.insert(int(rng.integers(len(before) + 1)), word)
        else:
            after.append(_pick(rng, INK_AFTER["en"]).replace("{a}", word))
    if mention_slant:
        _place_slant(rng, "en", slant, before, after, before_share=0.2)
    rng.shuffle(after)
    body = " ".join(before + [head])
    if after:
        joiner = " and " if len(after) > 1 and rng.random() < 0.5 else " "
        body += (", " if rng.random() < 0.3 else " ") + joiner.join(after)
    roll = rng.random()
    if head.startswith(("number", "digit")) and not before:
        determiner = "the" if roll < 0.5 else ""
    else:
        determiner = _article(body) if roll < 0.55 else "the" if roll < 0.7 else "this" if roll < 0.8 else ""
    return f"{determiner} {body}".strip()


def _noun_phrase_zh(rng, digit, ink, slant, mention_ink, mention_slant):
    head = _digit_words(rng, digit, "zh")
    before, after = [], []
    if rng.random() < 0.35:
        before.append(_pick(rng, NEUTRAL_ADJECTIVES["zh"]))
    if mention_ink:
        if rng.random() < 0.6:
            before.insert(int(rng.integers(len(before) + 1)), _pick(rng, INK_WORDS["zh"][ink]) + "的")
        else:  # "写得很粗": the one-character adjective
            after.append(_pick(rng, INK_AFTER["zh"]).replace("{a}", INK_WORDS["zh"][ink][1]))
    if mention_slant:
        _place_slant(rng, "zh", slant, before, after, before_share=0.5)
    roll = rng.random()
    determiner = "一个" if roll < 0.45 else "这个" if roll < 0.55 else ""
    return determiner + "".join(before) + head + "".join(after)


def _styled_en(rng, text):
    roll = rng.random()
    if roll < 0.2:
        return text[:1].upper() + text[1:]
    if roll < 0.25:
        return text.upper()
    if roll < 0.3:
        return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))
    return text


def random_caption(rng, digit, ink, slant, language=None, families=None):
    """A training caption of one image (at most :data:`TEXT_BYTES` bytes of UTF-8): a frame of ``families``
    (default :data:`FAMILIES`) around a noun phrase naming ``digit``, and its ink and slant at times."""
    language = language or LANGUAGES[rng.integers(2)]
    families = (families or FAMILIES)[language]
    mention_ink = ink != PLAIN and rng.random() < 0.5
    mention_slant = slant != UPRIGHT and rng.random() < 0.4
    make_phrase = _noun_phrase_en if language == "en" else _noun_phrase_zh
    for attempt in range(20):
        frame = _pick(rng, families[_pick(rng, sorted(families))])
        text = frame.replace("{np}", make_phrase(rng, digit, ink, slant, mention_ink, mention_slant))
        if attempt < 10 and rng.random() < 0.25:
            text = _pick(rng, PREFIXES[language]) + text
        if attempt < 10 and rng.random() < 0.35 and not text.endswith(("?", "？")):
            text += _pick(rng, SUFFIXES[language])
        if attempt < 10 and rng.random() < NOISE_SHARE:
            text = _with_noise(rng, text, language)
        if language == "en":
            text = _styled_en(rng, text)
        if len(text.encode()) <= TEXT_BYTES:
            return text
    return fill("{d}", digit, language)


def random_captions(rng, count):
    """``count`` captions of random digits and attributes (test and example inputs)."""
    return [random_caption(rng, int(rng.integers(10)), int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
            for _ in range(count)]


def caption_rows(labels, ink, slant, seed, language=None):
    """A caption per image as int32 ``[n, 64]`` rows (UTF-8, zero padded), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    texts = [random_caption(rng, int(d), int(i), int(s), language) for d, i, s in zip(labels, ink, slant)]
    return encode_texts(texts, TEXT_BYTES), texts


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


def captioned_mnist(split="train", limit=None):
    """``(images [n, 28, 28, 1] in [0, 1], labels, ink, slant)`` of an MNIST split."""
    from zoo.core.data.datasets import mnist_images

    images, labels = mnist_images(split, limit=limit)
    ink, slant = stroke_attributes(images, labels)
    return images, labels, ink, slant


def captioned_dataset(split="train", *, batch_size, seed=0, epoch=0, limit=None, value_range=(0.0, 1.0),
                      shuffle=True, drop_remainder=True, data=None, with_digits=False):
    """Batches of ``(images, text rows)`` (``with_digits``: ``(images, text rows, digits)``): a new caption per
    image each epoch, from ``(seed, epoch)`` only (so a resumed run sees what an uninterrupted one would)."""
    import tensorflow as tf

    from zoo.core.runtime.errors import BadInputError

    images, labels, ink, slant = data if data is not None else captioned_mnist(split, limit)
    if drop_remainder and batch_size > len(images):
        raise BadInputError(f"batch size {batch_size} is larger than the {len(images)} {split} images")
    rows, _ = caption_rows(labels, ink, slant, seed=[seed, epoch, 7])
    low, high = value_range
    dataset = tf.data.Dataset.from_tensor_slices(
        (images * (high - low) + low, rows, *([labels.astype(np.int32)] if with_digits else [])))
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
