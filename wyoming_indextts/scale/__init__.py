"""Beyond one machine: what replicas share through Redis (``--redis-url``).

Replicas are stateless and interchangeable behind a load balancer; what a client may need
from any of them lives in Redis:

* ``store.py``  the connection, and what an outage does (local fallback, a warning, a metric)
* ``cache.py``  the phrase cache shared by every replica, in front of each one's own
* ``files.py``  the HTTP door's generated audio files, served by any replica
* ``jobs.py``   asynchronous jobs on RQ, and ``wyoming-indextts worker`` that drains them

Without ``--redis-url`` none of this is imported and a single box keeps everything in
process, as the Home Assistant add-on does. ``redis`` and ``rq`` come with the ``[redis]``
extra.
"""
