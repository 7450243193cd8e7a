"""The REST stage cache (aws-contract.md §4): which requests it serves (:mod:`.policy`), their
keys (:mod:`.keys`) and how a cached response is kept (:mod:`.entry`). Pure core; the stage
that uses them is :mod:`server.stages.cache`."""
