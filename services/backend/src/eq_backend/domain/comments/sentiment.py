"""Keyword sentiment scoring of comments, exactly as the existing service scores them."""

from __future__ import annotations

import msgspec

NEGATIVE_WORDS: tuple[str, ...] = (
    "chán", "mệt", "stress", "khó chịu", "bực", "tức", "giận", "buồn", "thất vọng",
    "không thích", "ghét", "khó khăn", "vấn đề", "lo lắng", "sợ", "hoảng", "tuyệt vọng",
    "đau khổ", "khổ sở", "mệt mỏi", "kiệt sức", "bế tắc", "vl",
)  # fmt: skip
POSITIVE_WORDS: tuple[str, ...] = (
    "vui", "hạnh phúc", "tốt", "tuyệt", "thích", "yêu", "thú vị", "thành công", "may mắn",
    "tích cực", "lạc quan", "hy vọng", "niềm vui", "hài lòng",
)  # fmt: skip

_HIGH_WARNING = "⚠️ Phát hiện dấu hiệu stress/tiêu cực cao."
_MEDIUM_WARNING = "💡 Có vẻ bạn đang hơi tiêu cực. Mọi thứ sẽ ổn thôi!"
_SUGGESTIONS = {
    ("negative", "high"): [
        "Hít thở sâu và thư giãn một chút",
        "Chia sẻ với bạn bè hoặc người thân",
        "Tập trung vào những điều tích cực",
        "Tìm hoạt động giải trí để thư giãn",
    ],
    ("negative", "medium"): [
        "Thử nhìn vấn đề từ góc độ khác",
        "Tập trung vào giải pháp thay vì vấn đề",
        "Chia sẻ để được lắng nghe và hỗ trợ",
    ],
    ("positive", "low"): [
        "Tuyệt vời! Hãy lan tỏa năng lượng tích cực này",
        "Chia sẻ niềm vui với mọi người xung quanh",
        "Ghi nhớ cảm giác này để vượt qua khó khăn sau này",
    ],
    ("neutral", "low"): [
        "Hãy chia sẻ thêm về cảm xúc của bạn",
        "Thử bày tỏ rõ ràng hơn về suy nghĩ của mình",
    ],
}


class WordCounts(msgspec.Struct):
    positive_words: int
    negative_words: int
    total_words: int


class Sentiment(msgspec.Struct):
    sentiment: str
    score: float
    severity: str
    warning: str | None
    suggestions: list[str]
    analysis: WordCounts


def _hits(text: str, words: tuple[str, ...]) -> int:
    """How many words of the list occur in the text as substrings (each word counts once,
    as the existing service counts: "mệt mỏi" hits both "mệt" and "mệt mỏi")."""
    return sum(1 for word in words if word in text)


def score_sentiment(content: str) -> Sentiment:
    """Score a comment: (positive − negative hits) / words, clamped to [−1, 1]."""
    text = content.lower()
    positive = _hits(text, POSITIVE_WORDS)
    negative = _hits(text, NEGATIVE_WORDS)
    total_words = len(text.split())
    score = 0.0 if total_words == 0 else (positive - negative) / max(total_words, 1)
    score = max(-1.0, min(1.0, score))
    if score > 0.1:
        sentiment, severity, warning = "positive", "low", None
    elif score < -0.1:
        sentiment = "negative"
        severity = "high" if negative > 3 else "medium"
        warning = _HIGH_WARNING if severity == "high" else _MEDIUM_WARNING
    else:
        sentiment, severity, warning = "neutral", "low", None
    return Sentiment(
        sentiment=sentiment,
        score=score,
        severity=severity,
        warning=warning,
        suggestions=list(_SUGGESTIONS[(sentiment, severity)]),
        analysis=WordCounts(
            positive_words=positive, negative_words=negative, total_words=total_words
        ),
    )
