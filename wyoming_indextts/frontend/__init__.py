"""Front end: text → language-tagged sentences with pinyin, prosody marks and sentence type."""

from .pipeline import Frontend
from .sentence import Sentence, Span, Syllable

__all__ = ["Frontend", "Sentence", "Span", "Syllable"]
