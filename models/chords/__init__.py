"""Chord recognition: our own CQT network and HMM decoder, trained on renders of POP909."""
