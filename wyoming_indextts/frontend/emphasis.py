"""Which words a speaker would stress: the article's 「你真的要去银行取钱吗？」 stresses 真的.

Stress in announcements falls on intensifying and warning words placed before what they
modify; a short closed list of such words covers them without a model.
"""

from __future__ import annotations

import re

_STRESSED = (
    "真的", "一定", "千万", "务必", "必须", "马上", "立刻", "立即", "赶快", "赶紧", "绝对", "非常", "特别",
    "十分", "极其", "最", "注意", "小心", "警告", "危险", "紧急", "请勿", "不要", "别忘了", "究竟", "到底",
)
_PATTERN = re.compile("|".join(sorted(map(re.escape, _STRESSED), key=len, reverse=True)))


def find_emphasis(text: str) -> tuple[int, ...]:
    """Indexes of the characters in ``text`` that carry stress."""
    return tuple(i for match in _PATTERN.finditer(text) for i in range(match.start(), match.end()))
