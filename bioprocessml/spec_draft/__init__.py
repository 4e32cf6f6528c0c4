"""Drafting a dataset spec from a user's batch files (`bioprocessml spec draft`).

Part of the ground: it reads files and writes spec text, and imports no stage.
"""

from bioprocessml.spec_draft.render import draft_spec

__all__ = ["draft_spec"]
