"""CloudWatch Logs subscription filters, in-process: a function's log lines, delivered to the
function the template subscribes to them, as CloudWatch Logs would deliver them.

On AWS, Lambda sends what a function writes to stdout to its log group, and an
`AWS::Logs::SubscriptionFilter` hands the lines its pattern selects to a destination function,
asynchronously, as `{"awslogs": {"data": base64(gzip(json))}}`. The local gateway runs handlers in
its own threads, so this module takes each invocation's stdout with a thread-aware tap on
`sys.stdout` (everything is still written through), selects lines with the filter's pattern,
and invokes the destination from one background thread, after the response: like CloudWatch,
never on the request path. Used for predict's history lines (docs/history.md).

Filter patterns: only the JSON form this template uses, `{ ($.key = value) || ($.key = value) }`
(numbers or quoted strings, `||` or `&&`, not mixed); any other pattern is refused when the
gateway is built rather than matched wrongly.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from samcli.yamlhelper import yaml_parse

LOG = logging.getLogger(__name__)

_TERM = re.compile(r'\(?\s*\$\.([A-Za-z0-9_]+)\s*=\s*(-?[0-9]+(?:\.[0-9]+)?|"[^"]*")\s*\)?')


@dataclass(frozen=True)
class FilterPattern:
    """A JSON filter pattern of equality terms, all joined by `||` (any) or `&&` (all)."""

    terms: tuple[tuple[str, Any], ...]
    any_of: bool

    @classmethod
    def parse(cls, pattern: str) -> FilterPattern:
        text = pattern.strip()
        if not (text.startswith("{") and text.endswith("}")):
            raise ValueError(f"unsupported filter pattern {pattern!r}: only JSON patterns")
        body = text[1:-1].strip()
        if "||" in body and "&&" in body:
            raise ValueError(f"unsupported filter pattern {pattern!r}: || and && mixed")
        any_of = "&&" not in body
        terms = []
        for part in re.split(r"\|\||&&", body):
            match = _TERM.fullmatch(part.strip())
            if match is None:
                raise ValueError(f"unsupported filter pattern {pattern!r}: {part.strip()!r}")
            terms.append((match.group(1), json.loads(match.group(2))))
        return cls(tuple(terms), any_of)

    def matches(self, line: str) -> bool:
        try:
            document = json.loads(line)
        except ValueError:
            return False
        if not isinstance(document, dict):
            return False
        found = (
            key in document and type(document[key]) is not bool and document[key] == value
            for key, value in self.terms
        )
        return any(found) if self.any_of else all(found)


@dataclass(frozen=True)
class Subscription:
    source: str  # the logical id of the function whose log group is subscribed
    destination: str  # the logical id of the function the lines go to
    pattern: FilterPattern
    log_group: str


def subscriptions_from_template(template_path: str) -> list[Subscription]:
    """The template's subscription filters from a function's log group to a function."""
    resources: dict[str, Any] = yaml_parse(Path(template_path).read_text())["Resources"]
    found = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Logs::SubscriptionFilter":
            continue
        properties = resource["Properties"]
        group = resources[properties["LogGroupName"]["Ref"]]["Properties"]["LogGroupName"]["Fn::Sub"]
        source = re.fullmatch(r"/aws/lambda/\$\{([A-Za-z0-9]+)\}", group)
        destination = properties["DestinationArn"].get("Fn::GetAtt", [None])[0]
        if source is None or not destination:
            raise ValueError(f"{name}: only a function's log group to a function is emulated")
        pattern = FilterPattern.parse(properties["FilterPattern"])
        found.append(Subscription(source.group(1), destination, pattern, group))
    return found


class _StdoutTap:
    """Writes through to the stream it wraps; a thread that is capturing also keeps its text."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._local = threading.local()

    def write(self, text: str) -> int:
        kept: list[str] | None = getattr(self._local, "kept", None)
        if kept is not None:
            kept.append(text)
        return self.target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    @contextmanager
    def capturing(self) -> Iterator[list[str]]:
        kept: list[str] = []
        self._local.kept = kept
        try:
            yield kept
        finally:
            self._local.kept = None


def subscription_event(log_group: str, lines: list[str]) -> dict[str, Any]:
    """CloudWatch Logs' delivery to a Lambda function (base64 of gzip of JSON)."""
    now = int(time.time() * 1000)
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "local",
        "subscriptionFilters": ["local"],
        "logEvents": [{"id": str(i), "timestamp": now, "message": line} for i, line in enumerate(lines)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()}}


class LogSubscriptions:
    """Takes each subscribed function's stdout and delivers the selected lines in the background.

    `invoke(destination, event)` runs the destination function (the gateway's runner).
    """

    def __init__(self, subscriptions: list[Subscription], invoke: Any) -> None:
        self._by_source: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            self._by_source.setdefault(subscription.source, []).append(subscription)
        self._invoke = invoke
        self._tap: _StdoutTap | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Subscription, list[str]] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.delivered = 0  # deliveries made (for tests and the walkthrough)

    def _installed_tap(self) -> _StdoutTap:
        with self._lock:
            if self._tap is None or sys.stdout is not self._tap:
                self._tap = _StdoutTap(sys.stdout)  # over whatever stdout is now (pytest swaps it)
                sys.stdout = self._tap
            if self._worker is None:
                self._worker = threading.Thread(target=self._deliver, name="log-subscriptions", daemon=True)
                self._worker.start()
            return self._tap

    @contextmanager
    def captured(self, function: str) -> Iterator[None]:
        """Run the block as `function`'s invocation; queue its selected lines afterwards."""
        subscriptions = self._by_source.get(function)
        if not subscriptions:
            yield
            return
        with self._installed_tap().capturing() as kept:
            yield
        lines = "".join(kept).splitlines()
        for subscription in subscriptions:
            selected = [line for line in lines if subscription.pattern.matches(line)]
            if selected:
                self._queue.put((subscription, selected))

    def _deliver(self) -> None:
        while (item := self._queue.get()) is not None:
            subscription, lines = item
            try:
                self._invoke(subscription.destination, subscription_event(subscription.log_group, lines))
                self.delivered += 1
            except Exception:  # CloudWatch would retry, then the DLQ: here, the operator's log
                LOG.exception("delivery to %s failed", subscription.destination)
            finally:
                self._queue.task_done()

    def wait(self, timeout: float = 5.0) -> None:
        """Until every queued delivery is made (tests; the walkthrough needs no wait)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._queue.put(None)
                self._worker.join(5.0)
                self._worker = None
            if self._tap is not None and sys.stdout is self._tap:
                sys.stdout = self._tap.target
            self._tap = None


def invoker(handlers: Mapping[str, Any], context_for: Any) -> Any:
    """`invoke(destination, event)`: the destination's handler with a fresh Lambda context."""

    def invoke(destination: str, event: dict[str, Any]) -> None:
        handlers[destination](event, context_for(destination))

    return invoke
