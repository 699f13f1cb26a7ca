"""DICOM networking: receiving from modalities (C-STORE SCP) and pulling from a PACS.

Both feed the same import pipeline as files do (:mod:`scorer.services.intake`): validation,
de-identification, deduplication and audit. pynetdicom (MIT) speaks the protocol.
"""
