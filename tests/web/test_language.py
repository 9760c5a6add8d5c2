"""The language of a reply: Accept-Language for the JSON API, the reader's cookie for the pages, Chinese by
default; a "中文 / English" text shown on one side."""

from __future__ import annotations

import doctest

import pytest
from flask import Flask

import web.language
from web.language import install, reply_language, request_language


def test_the_examples_hold():
    assert doctest.testmod(web.language).failed == 0


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/api/v1/tasks", {}, "zh"),
    ("/api/v1/tasks", {"Accept-Language": "en-GB,en;q=0.9"}, "en"),
    ("/api/v1/tasks", {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh"),
    ("/api/v1/tasks", {"Accept-Language": "fr"}, "zh"),
    ("/api/v1/tasks", {"Accept-Language": "fr, en;q=0.5"}, "en"),
    ("/api/v1/tasks", {"Accept-Language": "en", "Cookie": "nanhai_lang=zh"}, "en"),
    ("/dispatch/", {"Accept-Language": "en"}, "zh"),
    ("/dispatch/", {"Cookie": "nanhai_lang=en"}, "en"),
    ("/login", {"Cookie": "nanhai_lang=xx"}, "zh"),
])
def test_the_api_follows_accept_language_and_the_pages_the_cookie(path, headers, expected):
    with_babel = Flask(__name__)
    install(with_babel)
    for app in (with_babel, Flask(__name__)):  # through Flask-Babel's selector, and without it
        with app.test_request_context(path, headers=headers):
            assert request_language() == expected
            assert reply_language() == expected


def test_outside_a_request_the_reply_is_chinese():
    assert reply_language() == "zh"
