"""Parameter extraction: find a request's key values and strip them.

The modules, one concept each:

- :mod:`~langgraph_speculative.cache.parameters.extractor`: :class:`ParameterExtractor`
  (fit, extract, strip, save, load) and the :class:`Parameter` it finds;
- :mod:`~langgraph_speculative.cache.parameters.normalise`: :func:`normalise_value`
  (numerals to digits, full-width to half-width) and the offset-keeping ``fold``;
- :mod:`~langgraph_speculative.cache.parameters.gazetteers`: :func:`load_gazetteers`
  and the longest-match matcher;
- :mod:`~langgraph_speculative.cache.parameters.detectors`: the span detectors (dates
  and times, numbers, capitalised names, jieba part-of-speech tags);
- :mod:`~langgraph_speculative.cache.parameters.tagger`: the sequence tagger's features
  and Viterbi decoding.
"""

from __future__ import annotations

from langgraph_speculative.cache.parameters.extractor import (
    KINDS,
    Parameter,
    ParameterExtractor,
)
from langgraph_speculative.cache.parameters.gazetteers import load_gazetteers
from langgraph_speculative.cache.parameters.normalise import normalise_value

__all__ = [
    "KINDS",
    "Parameter",
    "ParameterExtractor",
    "load_gazetteers",
    "normalise_value",
]
