"""Locust's own quickstart user (docs.locust.io, "Quick start" / "Writing a locustfile").

Why it exists: it is the first locustfile most people write, and it paces its users in
a way that surprises on a throughput chart: one task walks 10 items with a
`time.sleep(1)` between requests (Locust's gevent monkey-patching turns it into a
cooperative sleep, so it blocks only that user), the other makes two requests, and
every user logs in once in `on_start`. Used by experiments/quickstart-pod-delete.yaml;
wait_time is between(1, 2) as in the case reported in issue 11 (the docs use 1-5 s).
"""

import time

from locust import HttpUser, between, task


class QuickstartUser(HttpUser):
    wait_time = between(1, 2)

    @task
    def hello_world(self) -> None:
        self.client.get("/hello")
        self.client.get("/world")

    @task(3)
    def view_items(self) -> None:
        for item_id in range(10):
            self.client.get(f"/item?id={item_id}", name="/item")
            time.sleep(1)

    def on_start(self) -> None:
        self.client.post("/login", json={"username": "foo", "password": "bar"})
