"""Pipeline stages that do I/O (through the store); :mod:`server.pipeline` never imports them,
:mod:`server.app` passes them to :func:`server.pipeline.default_stages` as ``extra``."""
