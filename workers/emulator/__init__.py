"""A local Azure emulator for the demo, the tests and the bench (never imported by pages).

``simulation`` is the fleet: groups, workers, jobs and Log Analytics rows on a clock, with failure
scenarios; ``server`` answers Azure's ARM, Log Analytics and Entra routes over HTTPS from it;
``testing`` runs both in-process.
"""
