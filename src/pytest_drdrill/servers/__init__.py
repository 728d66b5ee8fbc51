"""Starting, watching and killing the processes drills run: the bottom layer.

Both the fault proxy (``proxy/``) and the backends' servers (``topology/``) start their
processes here, so there is one start-on-a-free-port loop and one reaper tag. Nothing in
this package imports the rest of pytest_drdrill beyond ``errors`` and ``timing``.
"""
