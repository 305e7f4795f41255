"""Drum transcription: our own onset network, trained on renders of the Groove MIDI Dataset."""
