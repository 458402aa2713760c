"""Longest text each input field takes (CONTRACT.md, deliberate difference 15).

A longer value is a 422 with the envelope. Every public feed page carries each situation's
context and question, so their limits also bound what one page weighs.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

TOPIC_NAME_MAX = 100
SITUATION_CONTEXT_MAX = 5_000
SITUATION_QUESTION_MAX = 1_000
IMAGE_URL_MAX = 2_048
COMMENT_MAX = 2_000
ANSWER_TEXT_MAX = 5_000  # an answer to analyse; stored with the analysis
SENTIMENT_TEXT_MAX = 5_000  # text to score for sentiment; not stored

TopicName = Annotated[str, msgspec.Meta(min_length=1, max_length=TOPIC_NAME_MAX)]
SituationContext = Annotated[str, msgspec.Meta(min_length=1, max_length=SITUATION_CONTEXT_MAX)]
SituationQuestion = Annotated[str, msgspec.Meta(min_length=1, max_length=SITUATION_QUESTION_MAX)]
ImageUrl = Annotated[str, msgspec.Meta(max_length=IMAGE_URL_MAX)]
CommentText = Annotated[str, msgspec.Meta(min_length=1, max_length=COMMENT_MAX)]
AnswerText = Annotated[str, msgspec.Meta(min_length=1, max_length=ANSWER_TEXT_MAX)]
SentimentText = Annotated[str, msgspec.Meta(min_length=1, max_length=SENTIMENT_TEXT_MAX)]
