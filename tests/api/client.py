"""A logged-in API client for the tests: a real HTTP session against a LiveServer, CSRF header included."""

from __future__ import annotations

import uuid

import requests

from tests.conftest import DEMO_PASSWORD


class ApiClient:
    def __init__(self, base: str, username: str | None = None, password: str = DEMO_PASSWORD) -> None:
        self.base, self.http, self.csrf = base, requests.Session(), None
        if username:
            response = self.http.post(f"{base}/api/v1/session", json={"username": username, "password": password})
            assert response.status_code == 201, response.text
            self.csrf = response.json()["csrf_token"]
            self.me = response.json()

    def _headers(self, key: str | None) -> dict:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(f"{self.base}/api/v1{path}", **kwargs)

    def post(self, path: str, body: dict | None = None, key: str | None = None, **kwargs) -> requests.Response:
        return self.http.post(f"{self.base}/api/v1{path}", json=body, headers=self._headers(key), **kwargs)

    def delete(self, path: str) -> requests.Response:
        return self.http.delete(f"{self.base}/api/v1{path}", headers=self._headers(None))

    def act(self, task: dict, action: str, **payload) -> requests.Response:
        """Send one transition on ``task`` at its version, with a fresh idempotency key."""
        return self.post(f"/tasks/{task['id']}/transitions", {"action": action, "version": task["version"], **payload},
                         key=str(uuid.uuid4()))
