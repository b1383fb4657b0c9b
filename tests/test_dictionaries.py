"""The compact dictionaries (frontend/dictionaries.py): the same answers as jieba's and pypinyin's
own dictionaries, and a cache file that is rebuilt whenever it cannot be used."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import jieba
import numpy as np
import pytest
from pypinyin import Style, lazy_pinyin, load_phrases_dict
from pypinyin.constants import PHRASES_DICT
from pypinyin.contrib.tone_convert import to_tone, to_tone3
from pypinyin.seg.mmseg import retrain
from pypinyin.seg.mmseg import seg as pypinyin_mmseg

from wyoming_indextts.frontend import dictionaries as dictionaries_module
from wyoming_indextts.frontend import prosody
from wyoming_indextts.frontend.dictionaries import (
    Dictionaries,
    WordTable,
    default_dictionaries,
    load_dictionaries,
)
from wyoming_indextts.frontend.g2p_zh import G2PZh
from wyoming_indextts.frontend.sentence import is_hanzi

# The reference is pypinyin with our phrase corrections loaded into it, as the build applies them.
CORRECTIONS = dictionaries_module.phrase_corrections()
load_phrases_dict({word: [[to_tone(s)] for s in pinyin] for word, pinyin in CORRECTIONS.items()})
retrain(pypinyin_mmseg)

REPO = Path(__file__).resolve().parent.parent
CPP_DEV = REPO.parent / "shared" / "data" / "cpp" / "dev.sent"
HANZI = [chr(c) for c in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000), *range(0xF900, 0xFB00))]


@pytest.fixture(scope="module")
def compact() -> Dictionaries:
    return default_dictionaries()


@pytest.fixture(scope="module")
def jieba_freq() -> tuple[dict[str, int], int]:
    """jieba's own FREQ and total, as its Tokenizer builds them."""
    return jieba.Tokenizer.gen_pfdict(jieba.Tokenizer().get_dict_file())


# -- the G2P's former pypinyin calls, verbatim: the reference ------------------------------------


@lru_cache(maxsize=4096)
def reference_tone3(syllable: str) -> str:
    out = to_tone3(syllable, neutral_tone_with_five=True).replace("ü", "v")
    return out if out[-1:].isdigit() else out + "5"


def reference_reading(word: str) -> tuple[str, ...]:
    pinyins = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True,
                          errors=lambda chars: ["" for _ in chars])  # type: ignore[arg-type,return-value]
    if len(pinyins) != len(word):
        pinyins = [lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in word]
    return tuple((p if p[-1:].isdigit() else (p + "5" if p else "de5")).replace("ü", "v") for p in pinyins)


def random_hanzi_texts(count: int, seed: int) -> list[str]:
    """Runs of dictionary words and stray (also rare) characters: many phrase boundaries."""
    rng = random.Random(seed)
    phrases = sorted(PHRASES_DICT)
    texts = []
    for _ in range(count):
        parts = [rng.choice(phrases) if rng.random() < 0.6 else rng.choice(HANZI) for _ in range(rng.randint(1, 6))]
        texts.append("".join(parts))
    return texts


# -- same answers ----------------------------------------------------------------------------------


def test_jieba_frequencies_are_all_there_and_equal(compact: Dictionaries, jieba_freq: tuple[dict[str, int], int]) -> None:
    freq, total = jieba_freq
    assert compact.total == total
    assert len(compact.freq) == len(freq)
    assert dict(compact.freq.items()) == freq  # every word and prefix, every frequency
    for absent in ("", "银行银行银行", "Zebra", "\U00020000", "的的"):
        assert (absent in compact.freq) == (absent in freq)
        assert compact.freq.get(absent) == freq.get(absent)
    with pytest.raises(KeyError):
        compact.freq["银行银行银行"]
    assert compact.freq["银行"] == freq["银行"] > 0


def test_phrase_readings_equal_pypinyins(compact: Dictionaries) -> None:
    phrases = compact.phrases
    assert len(phrases) == len(PHRASES_DICT) and set(phrases) == set(PHRASES_DICT)
    for word, readings in PHRASES_DICT.items():
        assert phrases.readings(word) == tuple(reference_tone3(options[0]) for options in readings), word
    assert phrases.readings("银行") == ("yin2", "hang2")
    assert phrases.longest == max(len(w) for w in PHRASES_DICT)
    prefix = next(w[:-1] for w in sorted(PHRASES_DICT) if len(w) > 2 and w[:-1] not in PHRASES_DICT)
    assert phrases.is_prefix(prefix) and prefix not in phrases and phrases.readings(prefix) is None
    assert not phrases.is_prefix("银行银行银行") and phrases.readings("银行银行银行") is None


def test_phrase_corrections_are_in_the_tables(compact: Dictionaries) -> None:
    assert compact.phrases.readings("质朴") == ("zhi4", "pu3")  # pypinyin 0.55: zhì piáo
    assert compact.phrases.readings("调高") == ("tiao2", "gao1")  # not in pypinyin
    assert compact.reading("调低") == ("tiao2", "di1")
    assert all(compact.phrases.readings(word) == tuple(pinyin) for word, pinyin in CORRECTIONS.items())


def test_changed_corrections_mean_another_cache_file(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dictionaries_module.sources()
    monkeypatch.setattr(dictionaries_module, "phrase_corrections", lambda: {**CORRECTIONS, "调温": ["tiao2", "wen1"]})
    after = dictionaries_module.sources()
    assert before != after
    assert dictionaries_module.cache_file(Path("/x"), before) != dictionaries_module.cache_file(Path("/x"), after)


def test_word_readings_equal_lazy_pinyin(compact: Dictionaries) -> None:
    """Every character the G2P reads one by one (rare ones without pinyin included), and words:
    jieba's (what the G2P asks about), pypinyin's phrases and random runs across phrases."""
    for char in HANZI:
        assert compact.reading(char) == reference_reading(char), char
    jieba_words = [w for w in jieba_freq_words() if all(is_hanzi(c) for c in w)]
    words = jieba_words[::15] + sorted(PHRASES_DICT)[::7] + random_hanzi_texts(3000, seed=1)
    for word in words:
        assert compact.reading(word) == reference_reading(word), word
    with pytest.raises(ValueError):
        compact.reading("银行ABC")


def jieba_freq_words() -> list[str]:
    with jieba.Tokenizer().get_dict_file() as handle:
        return [line.decode("utf-8").split(" ")[0] for line in handle]


def test_char_reading_is_lazy_pinyins_of_the_character_alone(compact: Dictionaries) -> None:
    """What the IndexTTS engine compares our readings with (tone digits aside)."""
    for char in HANZI:
        expected = lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0]
        assert compact.char_reading(char).rstrip("012345") == expected.rstrip("012345"), char
    assert compact.char_reading("行") == "xing2"
    with pytest.raises(ValueError):
        compact.char_reading("A")


def test_mmseg_cut_equals_pypinyins(compact: Dictionaries) -> None:
    texts = random_hanzi_texts(3000, seed=2) + ["", "银行行长", "中华人民共和国国歌", "ABC银行,。"]
    for text in texts:
        assert list(compact.phrases.cut(text)) == list(pypinyin_mmseg.cut(text)), text


def test_phrase_ends_equal_looking_up_every_length(compact: Dictionaries) -> None:
    rng = random.Random(3)
    for text in random_hanzi_texts(1500, seed=3):
        start = rng.randrange(len(text))
        first = start + rng.randint(1, 3)
        stop = min(len(text), start + rng.randint(1, 10))
        expected = [end for end in range(first, stop + 1) if text[start:end] in PHRASES_DICT]
        assert compact.phrases.ends(text, start, first, stop) == expected, (text, start, first, stop)


def test_jieba_cutting_over_the_compact_table_is_jiebas() -> None:
    lines = [line.replace("\u2581", "") for line in CPP_DEV.read_text(encoding="utf-8").splitlines()[:1500]] if CPP_DEV.exists() else []
    lines += random_hanzi_texts(500, seed=4) + [
        "", " ", "WiFi密码是abc-123，好吗？", "3.5公里 和 x+y", "\r\n换行\t了\r", "a b  c", "ABC中文DEF", "鿕鿖龥𠀀😀é",
        "iPhone15 Pro Max降价了", "C++和C#", "100%的把握", "___", "1.2.3", "ｅｍｍ全角",
    ]
    reference = jieba.Tokenizer()
    reference.initialize()
    compact = default_dictionaries()
    for line in lines:
        assert list(compact.cut(line)) == list(reference.cut(line, HMM=False)), line


def test_prosody_lattice_matches_the_former_word_set(compact: Dictionaries) -> None:
    """features() looked up every length 8 … 2 in a frozenset of the phrases of 2-8 characters."""
    words = frozenset(w for w in PHRASES_DICT if 2 <= len(w) <= 8)
    g2p = G2PZh()
    for text in random_hanzi_texts(300, seed=5) + ["中华人民共和国国歌响起，我们一起去银行。"]:
        readings = g2p(text)
        out = prosody.features(text, readings, {}, compact.phrases, g2p.lexical(text))
        for i in range(len(text)):
            lengths = [n for n in range(2, min(8, len(text) - i) + 1) if text[i : i + n] in words]
            assert out[i, 3] == (min(max(lengths), 4) if lengths else 0), (text, i)


def test_the_front_end_never_imports_pypinyin_or_jieba() -> None:
    """pypinyin loads its ~45 MB of dictionaries on import, jieba 8 MB of HMM tables (and its
    Tokenizer ~53 MB on initialize)."""
    code = (
        "import sys\n"
        "from wyoming_indextts.frontend import Frontend\n"
        "sentence = Frontend().analyze('银行行长说，我们去公园散步吧。')\n"
        "assert sentence.pinyin[:2] == ['yin2', 'hang2'], sentence.pinyin\n"
        "assert 'pypinyin' not in sys.modules, 'pypinyin was imported'\n"
        "assert 'jieba' not in sys.modules, 'jieba was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_compact_tables_are_small(compact: Dictionaries) -> None:
    assert compact.nbytes < 20 * 2**20  # jieba's FREQ and pypinyin's dictionaries were ~100 MB as dicts


# -- the cache file --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built() -> bytes:
    """One build of the file (in a child process, as the server does)."""
    return dictionaries_module._build_in_child()


class Builder:
    """Counts builds; gives the bytes of the real build."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def _cached_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / dictionaries_module.CACHE_FOLDER).glob("*.npz"))


def _same_answers(a: Dictionaries, b: Dictionaries) -> None:
    for word in ("银行", "行长", "中华人民共和国", "不存在的词语"):
        assert a.freq.get(word) == b.freq.get(word)
        assert a.phrases.readings(word) == b.phrases.readings(word)
        assert a.reading(word) == b.reading(word)


def test_child_build_is_the_in_process_build(built: bytes) -> None:
    in_process = dictionaries_module.build().to_bytes(dictionaries_module.sources())
    assert built == in_process


def test_missing_file_is_built_once_then_read(tmp_path: Path, built: bytes, compact: Dictionaries) -> None:
    builder = Builder(built)
    first = load_dictionaries(tmp_path, builder=builder)
    assert builder.calls == 1
    [path] = _cached_files(tmp_path)
    assert path.read_bytes() == built
    second = load_dictionaries(tmp_path, builder=builder)
    assert builder.calls == 1  # read from the file
    _same_answers(first, second)
    _same_answers(second, compact)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "garbage", "empty", "other format"])
def test_corrupt_file_is_rebuilt(tmp_path: Path, built: bytes, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    builder = Builder(built)
    load_dictionaries(tmp_path, builder=builder)
    [path] = _cached_files(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped byte":
        data[len(data) // 3] ^= 0xFF  # inside an array: only the zip member's CRC can tell
    elif damage == "garbage":
        data = bytearray(b"not a numpy file" * 100)
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(_with_meta(bytes(data), format=dictionaries_module.FORMAT + 1))
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=dictionaries_module.__name__):
        again = load_dictionaries(tmp_path, builder=builder)
    assert builder.calls == 2
    assert "unusable" in caplog.text
    assert path.read_bytes() == built  # written anew
    assert again.reading("银行") == ("yin2", "hang2")


def _with_meta(data: bytes, **changes: object) -> bytes:
    import io
    import json

    with np.load(io.BytesIO(data)) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_file_built_from_other_data_is_replaced(tmp_path: Path, built: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = Builder(built)
    load_dictionaries(tmp_path, builder=builder)
    [path] = _cached_files(tmp_path)
    older = path.with_name("frontend-dictionaries-0123456789abcdef.npz")  # an earlier jieba's, say
    older.write_bytes(_with_meta(built, sources={"jieba": "0.1"}))
    path.unlink()
    # Same name, other sources inside (a hash collision, or a file copied from elsewhere): rebuilt.
    path.write_bytes(_with_meta(built, sources={"jieba": "0.1"}))
    load_dictionaries(tmp_path, builder=builder)
    assert builder.calls == 2
    assert _cached_files(tmp_path) == [path] and path.read_bytes() == built  # the older file is gone


def test_unwritable_folder_builds_in_memory(tmp_path: Path, built: bytes, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    builder = Builder(built)
    with caplog.at_level(logging.WARNING, logger=dictionaries_module.__name__):
        dictionaries = load_dictionaries(blocker, builder=builder)
        load_dictionaries(blocker, builder=builder)
    assert builder.calls == 2  # nothing cached: built at every start
    assert "Cannot cache" in caplog.text
    assert blocker.is_file()
    assert dictionaries.reading("银行") == ("yin2", "hang2")


def test_build_from_other_sources_than_this_process_sees_is_redone_here(tmp_path: Path, built: bytes,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that imported another jieba or pypinyin: the process builds from its own."""
    in_process = []
    monkeypatch.setattr(dictionaries_module, "build", lambda: in_process.append(1) or Dictionaries.from_bytes(built)[0])
    dictionaries = load_dictionaries(tmp_path, builder=lambda: _with_meta(built, sources={"jieba": "0.1"}))
    assert in_process == [1]
    assert dictionaries.reading("银行") == ("yin2", "hang2")
    [path] = _cached_files(tmp_path)
    assert Dictionaries.from_bytes(path.read_bytes())[1] == dictionaries_module.sources()


def test_failing_child_falls_back_to_building_here(monkeypatch: pytest.MonkeyPatch, built: bytes,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(dictionaries_module.sys, "executable", "/nonexistent/python")
    monkeypatch.setattr(dictionaries_module, "build", lambda: Dictionaries.from_bytes(built)[0])
    with caplog.at_level(logging.WARNING, logger=dictionaries_module.__name__):
        data = dictionaries_module._build_in_child()
    assert "building them here" in caplog.text
    assert Dictionaries.from_bytes(data)[1] == dictionaries_module.sources()


def test_word_table_rejects_inconsistent_arrays() -> None:
    table = WordTable.build([("a", 1), ("ab", 0), ("银行", 7)])
    assert table.get("银行") == 7 and table.get("ab") == 0 and table.get("b") is None
    arrays = table.arrays("t")
    with pytest.raises(ValueError):
        WordTable(arrays["t_keys"].tobytes()[:-1], arrays["t_offsets"], arrays["t_slots"], arrays["t_values"])
    with pytest.raises(ValueError):
        WordTable(arrays["t_keys"].tobytes(), arrays["t_offsets"], arrays["t_slots"][:-1], arrays["t_values"])


def test_cli_builds_the_cache(tmp_path: Path) -> None:
    """What the Dockerfile runs at build time."""
    subprocess.run([sys.executable, "-m", "wyoming_indextts.frontend.dictionaries", "--cache-dir", str(tmp_path)],
                   check=True, cwd=REPO, timeout=300, capture_output=True)
    [path] = _cached_files(tmp_path)
    assert Dictionaries.from_bytes(path.read_bytes())[1] == dictionaries_module.sources()
