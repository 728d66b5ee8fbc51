"""The sample application the drills measure business functions through.

A small HTTP service implementing the requirements' functions (authentication, video
upload, annotation, reporting) over the topology's real stores, reached through the
same service endpoints as every other client. :mod:`.service` is the WSGI application,
:mod:`.schema` its tables; :mod:`pytest_drdrill.topology.app_tier` runs it.
"""
