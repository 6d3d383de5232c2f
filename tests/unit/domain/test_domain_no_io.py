"""The guard the domain tests run under refuses I/O (else "runs without I/O" would be an untested claim).
Threat: an insider with a data directory — a domain rule that quietly read a file or a database could be
steered by whoever can edit them; these tests keep the rules pure."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.no_io import IOInDomainTest


def test_opening_a_file_is_refused() -> None:
    with pytest.raises(IOInDomainTest, match="open"):
        Path(__file__).read_bytes()


def test_a_socket_is_refused() -> None:
    with pytest.raises(IOInDomainTest, match="socket"):
        socket.create_connection(("127.0.0.1", 5432), timeout=1)


def test_a_database_is_refused() -> None:
    with pytest.raises(IOInDomainTest, match="sqlite3"):
        sqlite3.connect(":memory:")


def test_a_process_is_refused() -> None:
    with pytest.raises(IOInDomainTest, match="subprocess"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
