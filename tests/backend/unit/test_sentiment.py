"""Sentiment scoring, with the contract's thresholds and texts."""

from __future__ import annotations

import pytest
from eq_backend.domain.comments.sentiment import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    score_sentiment,
)


def test_word_lists_have_the_contract_sizes() -> None:
    assert len(NEGATIVE_WORDS) == 23
    assert len(POSITIVE_WORDS) == 14


def test_positive() -> None:
    result = score_sentiment("Hôm nay tôi rất vui")
    assert result.sentiment == "positive"
    assert result.severity == "low"
    assert result.warning is None
    assert result.score == pytest.approx(1 / 5)
    assert result.analysis.positive_words == 1
    assert result.analysis.total_words == 5
    assert result.suggestions[0] == "Tuyệt vời! Hãy lan tỏa năng lượng tích cực này"


def test_negative_medium() -> None:
    result = score_sentiment("Tôi buồn quá")
    assert (result.sentiment, result.severity) == ("negative", "medium")
    assert result.score == pytest.approx(-1 / 3)
    assert result.warning == "💡 Có vẻ bạn đang hơi tiêu cực. Mọi thứ sẽ ổn thôi!"
    assert len(result.suggestions) == 3


def test_negative_high_needs_more_than_three_negative_hits() -> None:
    result = score_sentiment("chán buồn ghét sợ")
    assert result.analysis.negative_words == 4
    assert (result.sentiment, result.severity) == ("negative", "high")
    assert result.score == pytest.approx(-1.0)
    assert result.warning == "⚠️ Phát hiện dấu hiệu stress/tiêu cực cao."
    assert len(result.suggestions) == 4


def test_substring_hits_are_case_insensitive() -> None:
    # "Mệt mỏi" hits both "mệt" and "mệt mỏi".
    result = score_sentiment("MỆT MỎI")
    assert result.analysis.negative_words == 2
    assert result.score == pytest.approx(-1.0)


def test_neutral_and_empty() -> None:
    neutral = score_sentiment("Tôi đi làm lúc tám giờ sáng nay")
    assert (neutral.sentiment, neutral.severity, neutral.score) == ("neutral", "low", 0.0)
    assert neutral.suggestions == [
        "Hãy chia sẻ thêm về cảm xúc của bạn",
        "Thử bày tỏ rõ ràng hơn về suy nghĩ của mình",
    ]
    empty = score_sentiment("   ")
    assert empty.score == 0.0
    assert empty.analysis.total_words == 0
    assert empty.sentiment == "neutral"


def test_score_exactly_at_threshold_is_neutral() -> None:
    # 1 positive hit in 10 words → 0.1, not > 0.1.
    result = score_sentiment("vui a b c d e f g h i")
    assert result.score == pytest.approx(0.1)
    assert result.sentiment == "neutral"
