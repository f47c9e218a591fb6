"""Numbers as written and as spoken, in English and Chinese: the text-normalization data of ``zoo/seq2seq``.

Text normalization for speech (Sproat & Jaitly 2016, "RNN approaches to text normalization") turns what is
written ("Call 555-0123 at 3:45") into what a speaker says ("call five five five zero one two three at three
forty-five"). Every pair here is generated, so every reference is exact: English words come from ``num2words``,
Chinese numerals from ``cn2an``, with these conventions (the model card repeats them):

- spoken English is lower case, words separated by single spaces, the sentence's punctuation dropped;
  num2words' own forms otherwise ("one thousand two hundred and thirty-four", British "and"; years "nineteen
  eighty-seven", "two thousand and five", "nineteen oh-five"), its commas dropped;
- spoken Chinese keeps the sentence's characters and spaces; numbers are ``cn2an.an2cn``'s ("一千二百三十四",
  "一百一十"), years digit by digit ("一九八七年"), times "三点四十五分" ("三点" on the hour, "三点零五分"),
  money "十二元五角" (yuan, jiao, fen);
- digit strings (phone numbers, codes, PINs) are read digit by digit, zero as "zero" / "零", never "oh" or
  "幺"; in Chinese the digits are separated by spaces ("一 三 八 零 零 一 三").

Three tasks, a tag at the start of the source: ``<norm>`` (written -> spoken, English or Chinese sentences),
``<en2zh>`` and ``<zh2en>`` (an expression translated: a date "March 5, 2024" <-> "2024年3月5日", money in words
"twelve dollars fifty" <-> "十二美元五十美分", numbers and ordinals in words, times, "the year 1987" <-> "1987年").

What the test set measures is generalization: each kind has sentence frames that only the test set uses
(:data:`HELD_OUT_FRAMES`; for the translations, a frame pair per kind that the other kinds train with,
:data:`HELD_OUT_TRANSLATION_FRAMES`), and number ranges that training never draws (:data:`HELD_OUT_RANGES`);
a test pair uses a held-out frame, and its number comes from a held-out range half of the time. A held-out
frame is a new combination of words training has: most training sentences join one frame's words before the
number to another frame's words after it (:data:`FRAME_PIECES`, any kind; a bare digit string's kinds only their
own, :data:`BARE_DIGIT_KINDS`), so the model learns to copy the words around a number rather than to memorize a
few sentences; translations train with more words before the expression (:data:`TRAINING_TRANSLATION_PREFIXES`).
"""

import numpy as np

from zoo.core.apps.text_rows import row_texts, text_rows

TASKS = ("<norm>", "<en2zh>", "<zh2en>")
SOURCE_BYTES = 64   # the source row, tag included (zoo.core.runtime.utf8.TEXT_BYTES)
TARGET_BYTES = 128  # the output row; a pair's target takes at most TARGET_BYTES - 1 (the end byte follows)
KINDS = ("cardinal", "ordinal", "year", "time", "date", "money", "phone", "code")
DIGIT_KINDS = ("phone", "code")  # read digit by digit: the issue's >= 99.5% target
SPLITS = ("train", "validation", "test")
EPOCH_PAIRS = 64_000      # new training pairs drawn an epoch (tests shrink it, as they shrink MNIST)
VALIDATION_PAIRS = 2048

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
ZH_DIGITS = "零一二三四五六七八九"
EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# (low, high) inclusive: values of these ranges only appear in the test set
HELD_OUT_RANGES = {
    "cardinal": ((700, 799), (41_000, 41_999)),
    "ordinal": ((70, 79),),
    "year": ((1950, 1959),),
    "money": ((64, 64),),            # whole dollars / yuan of the amount
    "time": ((7, 7),),               # the hour
    "date": ((2031, 2031),),         # the year
}


def _held_out(kind, value):
    return any(low <= value <= high for low, high in HELD_OUT_RANGES.get(kind, ()))


# === spoken forms ==============================================================================

def _words(text):
    return text.replace(",", "")


def en_cardinal(n):
    from num2words import num2words

    return _words(num2words(int(n)))


def en_ordinal(n):
    from num2words import num2words

    return _words(num2words(int(n), to="ordinal"))


def en_year(year):
    from num2words import num2words

    return _words(num2words(int(year), to="year"))


def en_time(hour, minute):
    if minute == 0:
        return f"{en_cardinal(hour)} o'clock"
    if minute < 10:
        return f"{en_cardinal(hour)} oh {en_cardinal(minute)}"
    return f"{en_cardinal(hour)} {en_cardinal(minute)}"


def en_money(dollars, cents, with_cents_word=True):
    """"twelve dollars fifty cents"; "twelve dollars fifty" when ``with_cents_word`` is False (the translation
    task's phrasing); "one dollar", "five cents"."""
    parts = []
    if dollars:
        parts.append(f"{en_cardinal(dollars)} dollar{'s' if dollars != 1 else ''}")
    if cents:
        cents_word = f" cent{'s' if cents != 1 else ''}" if with_cents_word or not dollars else ""
        parts.append(en_cardinal(cents) + cents_word)
    return " ".join(parts) if parts else "zero dollars"


def en_date(year, month, day):
    return f"{MONTHS[month - 1].lower()} {en_ordinal(day)} {en_year(year)}"


def en_digits(digits):
    return " ".join(EN_DIGITS[int(d)] for d in digits)


def zh_cardinal(n):
    import cn2an

    return cn2an.an2cn(int(n))


def zh_digits(digits, separator=""):
    return separator.join(ZH_DIGITS[int(d)] for d in digits)


def zh_time(hour, minute):
    if minute == 0:
        return f"{zh_cardinal(hour)}点"
    return f"{zh_cardinal(hour)}点{'零' if minute < 10 else ''}{zh_cardinal(minute)}分"


def zh_money(yuan, cents):
    """"十二元五角", "十二元五角五分", "十二元零五分", "五分"."""
    jiao, fen = divmod(int(cents), 10)
    text = f"{zh_cardinal(yuan)}元" if yuan else ""
    if jiao:
        text += f"{zh_cardinal(jiao)}角"
    elif fen and yuan:
        text += "零"
    if fen:
        text += f"{zh_cardinal(fen)}分"
    return text or "零元"


def zh_dollars(dollars, cents):
    """The translation task's Chinese for US money: "十二美元五十美分"."""
    parts = ([f"{zh_cardinal(dollars)}美元"] if dollars else []) + ([f"{zh_cardinal(cents)}美分"] if cents else [])
    return "".join(parts) or "零美元"


def zh_date(year, month, day):
    return f"{zh_digits(str(year))}年{zh_cardinal(month)}月{zh_cardinal(day)}日"


# === drawing values ===========================================================================

def _draw(rng, kind, held_out):
    """A value of ``kind``: its ranged part (the number, the hour, the whole amount, the year of a date) from
    one of the kind's held-out ranges when ``held_out``, else from outside all of them."""
    ranges = HELD_OUT_RANGES.get(kind)
    if held_out and ranges:
        low, high = ranges[int(rng.integers(0, len(ranges)))]
        return _draw_any(rng, kind, key=int(rng.integers(low, high + 1)))
    while True:
        value = _draw_any(rng, kind)
        if not ranges or not _held_out(kind, value if isinstance(value, int) else value[0]):
            return value


def _draw_any(rng, kind, key=None):
    """A value of ``kind``; ``key``: its ranged part, given."""
    if kind == "cardinal":  # as many 2-digit as 6-digit numbers
        digits = int(rng.integers(1, 7))
        return key if key is not None else int(rng.integers(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits))
    if kind == "ordinal":
        return key if key is not None else int(rng.integers(1, 10) if rng.random() < 0.3 else rng.integers(10, 200))
    if kind == "year":
        return key if key is not None else int(rng.integers(1900, 2100) if rng.random() < 0.9
                                               else rng.integers(1800, 1900))
    if kind == "time":
        minute = int(rng.choice([0, int(rng.integers(1, 10)), int(rng.integers(10, 60))]))
        return (key if key is not None else int(rng.integers(1, 13))), minute
    if kind == "date":
        month = int(rng.integers(1, 13))
        day = int(rng.integers(1, 29 if month == 2 else 31))
        return (key if key is not None else int(rng.integers(1950, 2050))), month, day
    if kind == "money":
        whole = key if key is not None else int(rng.choice(
            [rng.integers(0, 10), rng.integers(10, 100), rng.integers(100, 10_000)]))
        cents = int(rng.choice([0, rng.integers(1, 100)]))
        return whole, (cents if whole or cents else 1)
    if kind == "phone":
        return "".join(str(d) for d in rng.integers(0, 10, 10 if rng.random() < 0.5 else 7))
    if kind == "code":
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 7))))
    raise ValueError(kind)


# === written forms and sentence frames =========================================================

def _en_written(kind, value, rng):
    """(written, spoken) English of one value."""
    if kind == "cardinal":
        written = f"{value:,}" if value >= 1000 and rng.random() < 0.5 else str(value)
        return written, en_cardinal(value)
    if kind == "ordinal":
        suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
        return f"{value}{suffix}", en_ordinal(value)
    if kind == "year":
        return str(value), en_year(value)
    if kind == "time":
        hour, minute = value
        return f"{hour}:{minute:02d}", en_time(hour, minute)
    if kind == "date":
        year, month, day = value
        if rng.random() < 0.5:
            return f"{MONTHS[month - 1]} {day}, {year}", en_date(year, month, day)
        return f"{day} {MONTHS[month - 1]} {year}", f"the {en_ordinal(day)} of {MONTHS[month - 1].lower()} " \
                                                      f"{en_year(year)}"
    if kind == "money":
        dollars, cents = value
        written = f"${dollars:,}" + (f".{cents:02d}" if cents else "")
        return written, en_money(dollars, cents)
    if kind == "phone":
        written = f"{value[:3]}-{value[3:]}" if len(value) == 7 else f"({value[:3]}) {value[3:6]}-{value[6:]}"
        return written, en_digits(value)
    if kind == "code":
        return value, en_digits(value)
    raise ValueError(kind)


def _zh_written(kind, value, rng):
    """(written, spoken) Chinese of one value."""
    if kind == "cardinal":
        return str(value), zh_cardinal(value)
    if kind == "ordinal":
        return f"第{value}", f"第{zh_cardinal(value)}"
    if kind == "year":
        return f"{value}年", f"{zh_digits(str(value))}年"
    if kind == "time":
        hour, minute = value
        return f"{hour}:{minute:02d}", zh_time(hour, minute)
    if kind == "date":
        year, month, day = value
        return f"{year}年{month}月{day}日", zh_date(year, month, day)
    if kind == "money":
        yuan, cents = value
        return f"{yuan}" + (f".{cents:02d}" if cents else "") + "元", zh_money(yuan, cents)
    if kind == "phone":
        written = f"{value[:3]} {value[3:]}" if len(value) == 7 else f"{value[:3]} {value[3:7]} {value[7:]}"
        return written, zh_digits(value, " ")
    if kind == "code":
        return value, zh_digits(value, " ")
    raise ValueError(kind)


# Frames of the <norm> sentences: "{}" is the number. The last frame of each kind is held out (test only).
EN_FRAMES = {
    "cardinal": ("I counted {} birds", "There are {} people here", "We sold {} cars last year", "Page {}",
                 "about {} miles away", "The box holds {} apples", "{} votes were cast", "She scored {} points"),
    "ordinal": ("He finished {}", "the {} floor", "It is her {} birthday", "on the {} try", "The {} runner won",
                "our {} anniversary"),
    "year": ("born in {}", "In {} we moved", "the summer of {}", "It opened in {}", "a {} model",
             "back in {} it rained"),
    "time": ("Meet me at {}", "The train leaves at {}", "at {} sharp", "It is {} now", "wake up at {}",
             "Lunch starts at {}"),
    "date": ("on {}", "Due {}", "He was born on {}", "The sale ends {}", "Since {}", "signed on {}"),
    "money": ("It costs {}", "I paid {} for it", "a {} ticket", "Rent is {}", "She owes me {}", "only {} today"),
    "phone": ("Call {}", "My number is {}", "Call {} now", "phone: {}", "Text {} after six", "reach us at {}"),
    "code": ("Your code is {}", "PIN {}", "order number {}", "Enter {} to log in", "room code {}", "ticket {}"),
}
ZH_FRAMES = {
    "cardinal": ("我数了{}只鸟", "这里有{}个人", "去年卖了{}辆车", "第{}页", "大约{}公里", "箱子里有{}个苹果",
                 "一共{}票", "她得了{}分"),
    "ordinal": ("他得了{}名", "{}层", "这是她的{}个生日", "{}次尝试", "{}位选手赢了", "我们的{}个纪念日"),
    "year": ("生于{}", "{}我们搬家了", "{}的夏天", "它在{}开业", "{}的型号", "早在{}下过雨"),
    "time": ("{}见", "火车{}出发", "{}准时", "现在是{}", "{}起床", "午饭{}开始"),
    "date": ("{}", "截止到{}", "他生于{}", "促销到{}结束", "自{}以来", "签于{}"),
    "money": ("它要{}", "我付了{}", "一张{}的票", "房租是{}", "她欠我{}", "今天只要{}"),
    "phone": ("电话 {}", "我的号码是 {}", "请拨打 {}", "电话：{}", "六点后发短信到 {}", "联系我们 {}"),
    "code": ("验证码 {}", "密码 {}", "订单号 {}", "输入 {} 登录", "房间码 {}", "票号 {}"),
}
# The ZH cardinal frame "第{}页" reads the number as a cardinal after 第 (what a speaker says: 第一百二十页)
HELD_OUT_FRAMES = {"en": {kind: frames[-1] for kind, frames in EN_FRAMES.items()},
                   "zh": {kind: frames[-1] for kind, frames in ZH_FRAMES.items()}}
HELD_OUT_FRAME_SET = {f.lower() for frames in HELD_OUT_FRAMES.values() for f in frames.values()}


def _pieces(frames, language):
    """The words before and after the number in ``frames``: ``[(before, after)]``. English pieces are stripped
    (a sentence joins them with spaces); Chinese ones keep their spaces ("输入 ", " 登录"): whether a space
    stands between a word and a number is part of the sentence the model copies."""
    split = [frame.split("{}") for frame in frames]
    return [tuple(part.strip() for part in parts) if language == "en" else tuple(parts) for parts in split]


def _joined(language, before, after):
    """A frame from the words before and after the number."""
    if language == "zh":
        return f"{before}{{}}{after}"
    return " ".join(part for part in (before, "{}", after) if part)


# Every frame's words before and after its number, held-out frames' too: a training sentence joins one frame's
# "before" to another's "after" (any kind), so the model learns to copy the words around a number, and a
# held-out frame is a new combination of pieces it has copied, never a word it has not seen.
FRAME_PIECES = {"en": _pieces([f for frames in EN_FRAMES.values() for f in frames], "en"),
                "zh": _pieces([f for frames in ZH_FRAMES.values() for f in frames], "zh")}
# ... and some sentences surround the number with words drawn at random from every frame (Chinese: characters,
# with or without a space next to the number), so that copying, not a frame's habits, is what is learned
FRAME_WORDS = {"en": sorted({w for f in FRAME_PIECES["en"] for part in f for w in part.split()}),
               "zh": sorted({c for f in FRAME_PIECES["zh"] for part in f for c in part if not c.isspace()})}
# A bare digit string is read as a cardinal, a code or (English) a year: only the words around it tell which
# ("She scored 41955 points", "ticket 1913", "born in 1913"). Those kinds' sentences join pieces of their own
# kind's frames (the held-out frame's pieces too, never the held-out frame itself), not any frame's pieces or
# random words: a model trained on "ticket {} points" with a cardinal and a code alike can only guess.
BARE_DIGIT_KINDS = {"en": ("cardinal", "year", "code"), "zh": ("cardinal", "code")}
KIND_PIECES = {"en": {kind: _pieces(frames, "en") for kind, frames in EN_FRAMES.items()},
               "zh": {kind: _pieces(frames, "zh") for kind, frames in ZH_FRAMES.items()}}
COMBINED_FRAMES = 0.5  # the share of training sentences whose frame joins two frames' pieces
RANDOM_WORD_FRAMES = 0.2  # ... and whose frame is words drawn at random


def _random_words(rng, language):
    words = FRAME_WORDS[language]
    if language == "en":
        return " ".join(words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(0, 4))))
    return "".join(words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(0, 6))))


def _combined_frame(rng, language, kind):
    pieces = FRAME_PIECES[language]
    bare = kind in BARE_DIGIT_KINDS[language]
    if bare:  # the words must say how to read the digits: this kind's pieces only, never random words
        pieces = KIND_PIECES[language][kind]
    random_words = not bare and rng.random() < RANDOM_WORD_FRAMES / (COMBINED_FRAMES + RANDOM_WORD_FRAMES)
    while True:
        if random_words:
            before, after = _random_words(rng, language), _random_words(rng, language)
            if language == "zh":  # a space between the words and the number, or none, on each side
                before += " " * int(before != "" and rng.random() < 0.5)
                after = " " * int(after != "" and rng.random() < 0.5) + after
        else:
            before = pieces[int(rng.integers(0, len(pieces)))][0]
            after = pieces[int(rng.integers(0, len(pieces)))][1]
        frame = _joined(language, before, after)
        if frame.lower() not in HELD_OUT_FRAME_SET:
            return frame


def _frame(rng, frames, held_out, language, kind):
    if held_out:
        return frames[-1]
    if rng.random() < COMBINED_FRAMES + RANDOM_WORD_FRAMES:
        return _combined_frame(rng, language, kind)
    return frames[int(rng.integers(0, len(frames) - 1))]


def _en_sentence(frame, written, spoken):
    """The written sentence and its spoken form: the frame's words lower-cased, punctuation dropped."""
    source = frame.format(written)
    words = frame.format("\0").replace(":", "").lower().split()
    target = " ".join(spoken if w == "\0" else w for w in words)
    return source, target


def _zh_sentence(frame, written, spoken):
    target = frame.replace("：", " ").format(spoken)
    return frame.format(written), " ".join(target.split())


TWO_NUMBER_SENTENCES = 0.15  # the share of training sentences that join two ("Call 555-0123 at 3:45")
SENTENCE_JOINERS = {"en": (" ", " and "), "zh": ("", "，")}  # the same in the source and the spoken form


def _one_number_pair(rng, language, kind, held_out):
    value = _draw(rng, kind, held_out and rng.random() < 0.5)
    if language == "en":
        written, spoken = _en_written(kind, value, rng)
        return (*_en_sentence(_frame(rng, EN_FRAMES[kind], held_out, "en", kind), written, spoken), spoken)
    written, spoken = _zh_written(kind, value, rng)
    return (*_zh_sentence(_frame(rng, ZH_FRAMES[kind], held_out, "zh", kind), written, spoken), spoken)


def norm_pair(rng, language, kind, held_out):
    """``(written sentence, spoken sentence, the number's spoken words)``. Some training sentences hold a second
    number of any kind after the first (the span is the first's): without them a model reads the first number
    and drops or garbles the second. The test keeps one number a sentence (its draws are unchanged)."""
    source, target, span = _one_number_pair(rng, language, kind, held_out)
    if not held_out and rng.random() < TWO_NUMBER_SENTENCES:
        second_kind = KINDS[int(rng.integers(0, len(KINDS)))]
        second_source, second_target, _ = _one_number_pair(rng, language, second_kind, False)
        joiner = SENTENCE_JOINERS[language][int(rng.integers(0, 2))]
        source, target = source + joiner + second_source, " ".join((target + joiner + second_target).split())
    return source, target, span


# Translations: (English, Chinese) of one value in a frame pair. Each kind holds out one frame pair that the
# other kinds train with: the test's combinations are new, their words are not
TRANSLATION_KINDS = ("cardinal", "ordinal", "year", "time", "date", "money")
TRANSLATION_FRAMES = (("{}", "{}"), ("about {}", "大约{}"), ("exactly {}", "正好{}"), ("only {}", "只有{}"))
HELD_OUT_TRANSLATION_FRAMES = {kind: TRANSLATION_FRAMES[1 + i % 3] for i, kind in enumerate(TRANSLATION_KINDS)}
# More words before the expression, for training only, of many lengths, and some sentences put two of them
# together ("maybe at least {}", "也许至少{}"): with four frames a model learns where a kind's digits sit in the
# row (trained on "exactly 1:00" and "only 1:00", it read the held-out "about 1:00" as 10点), with these it
# learns to copy them from wherever they are (the <norm> sentences' combined frames do the same).
TRAINING_TRANSLATION_PREFIXES = (
    ("almost", "将近"), ("at least", "至少"), ("nearly", "差不多"), ("over", "超过"), ("just", "刚好"),
    ("merely", "仅"), ("at most", "最多"), ("maybe", "也许"), ("not even", "还不到"), ("close to", "接近"),
    ("more than", "多于"), ("perhaps", "或许"))
TWO_PREFIX_TRANSLATIONS = 0.3  # the share of training expressions with two prefixes


def _translation_frames(rng, kind, held_out):
    """The (English, Chinese) frame pair of one expression: the kind's held-out pair for the test; in training
    any other pair of :data:`TRANSLATION_FRAMES` or of the training prefixes, or two prefixes joined (never the
    kind's held-out words)."""
    if held_out:
        return HELD_OUT_TRANSLATION_FRAMES[kind]
    held = HELD_OUT_TRANSLATION_FRAMES[kind][0][:-3]
    prefixes = [(en[:-3], zh[:-2]) for en, zh in TRANSLATION_FRAMES[1:] if en[:-3] != held]
    prefixes += list(TRAINING_TRANSLATION_PREFIXES)
    if rng.random() < TWO_PREFIX_TRANSLATIONS:
        first, second = rng.choice(len(prefixes), 2, replace=False)
        (en_1, zh_1), (en_2, zh_2) = prefixes[int(first)], prefixes[int(second)]
        return f"{en_1} {en_2} {{}}", f"{zh_1}{zh_2}{{}}"
    index = int(rng.integers(0, len(prefixes) + 1))
    return TRANSLATION_FRAMES[0] if index == len(prefixes) else (f"{prefixes[index][0]} {{}}",
                                                                 f"{prefixes[index][1]}{{}}")


def _translation(kind, value, rng):
    if kind == "cardinal":
        return en_cardinal(value), zh_cardinal(value)
    if kind == "ordinal":
        return f"the {en_ordinal(value)}", f"第{zh_cardinal(value)}"
    if kind == "year":
        return f"the year {value}", f"{value}年"
    if kind == "time":
        hour, minute = value
        return f"{hour}:{minute:02d}", f"{hour}点" + (f"{minute:02d}分" if minute else "")
    if kind == "date":
        year, month, day = value
        return f"{MONTHS[month - 1]} {day}, {year}", f"{year}年{month}月{day}日"
    if kind == "money":
        dollars, cents = value
        if rng.random() < 0.5:
            return f"${dollars}" + (f".{cents:02d}" if cents else ""), f"{dollars}" + \
                (f".{cents:02d}" if cents else "") + "美元"
        return en_money(dollars, cents, with_cents_word=False), zh_dollars(dollars, cents)
    raise ValueError(kind)


def translation_pair(rng, direction, kind, held_out):
    """``(source, target, the translated expression)``."""
    value = _draw(rng, kind, held_out and rng.random() < 0.5)
    english, chinese = _translation(kind, value, rng)
    en_frame, zh_frame = _translation_frames(rng, kind, held_out)
    span = chinese if direction == "en2zh" else english
    english, chinese = en_frame.format(english), zh_frame.format(chinese)
    return (english, chinese, span) if direction == "en2zh" else (chinese, english, span)


# === pairs ===================================================================================

def task_of(source):
    """The tag a source starts with, or None."""
    return next((tag for tag in TASKS if source.startswith(tag + " ")), None)


def draw_pair(rng, held_out=False):
    """``(source, target, group, span)``: a tagged source of at most SOURCE_BYTES bytes, its reference, the
    group it is scored in ("norm en phone", "en2zh date", ...) and the reference's reading of the number (what
    an unacceptable error gets wrong)."""
    while True:
        task = TASKS[int(rng.integers(0, len(TASKS)))]
        if task == "<norm>":
            language = ("en", "zh")[int(rng.integers(0, 2))]
            kind = KINDS[int(rng.integers(0, len(KINDS)))]
            text, target, span = norm_pair(rng, language, kind, held_out)
            group = f"norm {language} {kind}"
        else:
            kind = TRANSLATION_KINDS[int(rng.integers(0, len(TRANSLATION_KINDS)))]
            text, target, span = translation_pair(rng, task[1:-1], kind, held_out)
            group = f"{task[1:-1]} {kind}"
        source = f"{task} {text}"
        if len(source.encode("utf-8")) <= SOURCE_BYTES and len(target.encode("utf-8")) < TARGET_BYTES:
            return source, target, group, span


def pairs(split, count, seed=0):
    """``count`` pairs of ``split``: "train" (training frames and ranges; a new draw per seed), "validation"
    (the same, another stream) or "test" (held-out frames, held-out ranges half of the time). Deterministic in
    (split, seed)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([SPLITS.index(split), int(seed)])
    return [draw_pair(rng, held_out=split == "test") for _ in range(int(count))]


def encode(texts, length):
    """Strings -> int32 ``[n, length]`` UTF-8 rows, zero padded."""
    return text_rows(texts, length)


decode = row_texts  # int32 rows -> strings, each up to its first zero byte
