"""A user's own locustfile: browse and check out, with its own task weights."""

from locust import FastHttpUser, between, task


class Shopper(FastHttpUser):
    wait_time = between(0.05, 0.1)

    @task(3)
    def browse(self) -> None:
        self.client.get("/", name="browse")

    @task(1)
    def health(self) -> None:
        self.client.get("/healthz", name="health")
