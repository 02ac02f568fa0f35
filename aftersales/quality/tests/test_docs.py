"""docs/indicators.md describes every indicator of the registry, with the same default target."""

import re
from pathlib import Path

from aftersales.quality.indicators import INDICATORS

DOC = Path(__file__).resolve().parents[3] / "docs" / "indicators.md"


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_every_indicator_is_documented_and_nothing_else():
    assert set(_rows()) == set(INDICATORS)


def test_documented_direction_and_target_match_the_code():
    for code, (_label, formula, better, target) in _rows().items():
        ind = INDICATORS[code]
        assert formula, code
        assert better == (ind.better or "—"), code
        if ind.target is None:
            assert target == "—", code
        else:
            number = f"{ind.target:g}"
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.])", target), (code, target)
            if ind.amber:
                assert f"{ind.amber:g}" in target, (code, target)
