"""Torch memory cores behind one interface (see ``memrl.memory.base``)."""
