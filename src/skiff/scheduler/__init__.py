"""The scheduler: a pure core (framework + plugins over a snapshot) and the component around it.

- :mod:`.framework` — ``Framework(profile).schedule_one(snapshot, pod) -> ScheduleResult``
- :mod:`.interface` — extension-point Protocols, ``Status``/``Code``, ``CycleState``
- :mod:`.snapshot`  — ``Snapshot`` / ``NodeInfo`` (incremental cluster view)
- :mod:`.queue`     — ``SchedulingQueue`` (activeQ / backoffQ / unschedulable)
- :mod:`.profile`   — default and bin-packing profiles, ``load_config`` (--scheduler-config)
- :mod:`.plugins`   — one module per in-tree plugin, ``default_registry()``
- :mod:`.scheduler` — the component; ``run_scheduler(client)``
"""
