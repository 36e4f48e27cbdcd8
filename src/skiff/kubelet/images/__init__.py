"""The node's images: references, a content-addressed store, archive import, registry pull."""
