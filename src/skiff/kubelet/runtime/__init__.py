"""Container runtimes behind one interface (see interface.py): runc, and later process and fake."""
