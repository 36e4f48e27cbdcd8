"""Controllers: reconcile loops that make the cluster match what users asked for.

Shared machinery (read these first):

* :mod:`.reconciler`  the skeleton: ``Controller`` (informers -> key queue -> workers ->
                      ``reconcile(key)``) and ``ControllerContext``
* :mod:`.manager`     ``run_controllers()``: the explicit list of controllers, one shared
                      informer factory, one TaskGroup
* :mod:`.events`      ``EventRecorder`` (+ :mod:`.eventcorrelation`: spam filter, aggregation)
* :mod:`.ownership`   controller references, adoption and release, the controller-UID index
* :mod:`.podcontrol`  pods from templates, slow-start batches
* :mod:`.podstate`    active / ready / available
* :mod:`.ranking`     which pods a ReplicaSet deletes first

Workload controllers: :mod:`.replicaset` (ReplicaSet, ReplicationController) and
:mod:`.deployment`; the housekeeping ones (garbage collector, namespaces, service
accounts, pod GC, node lifecycle, endpoints, ...) live next to them, one module each.
"""
