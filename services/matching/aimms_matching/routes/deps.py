"""What the routes get from the composition root."""

from typing import Annotated

from aimms_matching.store import MatchingStore
from aimms_matching.use_cases import Matchmaker
from aimms_shared.http import from_state

Store = Annotated[MatchingStore, from_state("store")]
Matching = Annotated[Matchmaker, from_state("matchmaker")]
