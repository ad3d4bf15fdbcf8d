"""The ACL users generated from ``shared.streams.ACCESS``, on a real redis-server started with
the generated ACL file: each service may write its own keys and nothing else."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from shared import redis_acl, streams
from shared.streams import BusUser
from tests.support.redis_server import RedisServer, start_redis

Write = Callable[[redis.Redis], object]

# For each service: one write its table allows, and writes outside it (each must be refused).
CASES: dict[BusUser, tuple[Write, list[Write]]] = {
    BusUser.MARKET_DATA: (
        lambda r: r.xadd(streams.ticker_stream("BTCUSDT"), {"price": "1"}),
        [
            lambda r: r.xadd(streams.CONTROL_COMMANDS, {"command": "start"}),
            lambda r: r.xadd(streams.executor_inbox("BTCUSDT"), {"side": "BUY"}),
            lambda r: r.set(streams.DASHBOARD_PASSWORD_HASH, "x"),
        ],
    ),
    BusUser.STRATEGY: (
        lambda r: r.xadd(streams.executor_inbox("BTCUSDT"), {"side": "BUY"}),
        [
            lambda r: r.xadd(streams.kline_stream("BTCUSDT"), {"close": "1"}),  # consumed, never written
            lambda r: r.xadd(streams.CONTROL_COMMANDS, {"command": "start"}),
            lambda r: r.hset(streams.MARKET_LAST_PRICE, "BTCUSDT", "1"),
        ],
    ),
    BusUser.EXECUTOR: (
        lambda r: r.xadd(streams.EXECUTOR_EVENTS, {"type": "executor_alert"}),
        [
            lambda r: r.xadd(streams.executor_inbox("BTCUSDT"), {"side": "BUY"}),
            lambda r: r.set(streams.PARAMETERS, "{}"),
            lambda r: r.xadd(streams.ticker_stream("BTCUSDT"), {"price": "1"}),
            lambda r: r.xadd(streams.symbol_commands("BTCUSDT"), {"command": "close_position"}),
        ],
    ),
    BusUser.API: (
        lambda r: r.xadd(streams.CONTROL_COMMANDS, {"command": "stop"}),
        [
            lambda r: r.xadd(streams.executor_inbox("BTCUSDT"), {"side": "BUY"}),
            lambda r: r.set(streams.command_answer_key("c1", "done"), "api"),  # only the executor answers
            lambda r: r.hset(streams.MARKET_LAST_PRICE, "BTCUSDT", "1"),
            lambda r: r.hset(streams.POSITIONS, "BTCUSDT", "{}"),
            lambda r: r.set(streams.lease_key("executor", "BTCUSDT"), "me"),
        ],
    ),
    BusUser.NOTIFIER: (
        lambda r: r.hset(streams.notifier_sent_key("position_opened:EB-BTCUSDT-1"), "target", "1"),
        [
            lambda r: r.xadd(streams.EXECUTOR_EVENTS, {"type": "executor_alert"}),  # consumed, never written
            lambda r: r.xadd(streams.CONTROL_COMMANDS, {"command": "stop"}),
            lambda r: r.hset(streams.MARKET_CLOCK, "BTCUSDT", "1"),
            lambda r: r.set(streams.DASHBOARD_PASSWORD_HASH, "x"),
        ],
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    started = start_redis(tmp_path_factory.mktemp("acl"), acl=True)
    yield started
    started.stop()


def test_every_service_of_the_table_has_a_case() -> None:
    assert set(CASES) == set(streams.ACCESS) == set(BusUser)


@pytest.mark.parametrize("user", list(BusUser), ids=str)
def test_each_user_writes_its_own_keys_and_is_refused_the_rest(server: RedisServer, user: BusUser) -> None:
    allowed, refused = CASES[user]
    client = redis.Redis.from_url(server.user_url(user.value), decode_responses=True)
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        before = admin.dbsize()
        assert allowed(client)
        assert admin.dbsize() >= before
        for write in refused:
            snapshot = {key: admin.type(key) for key in admin.scan_iter()}
            with pytest.raises(redis.exceptions.NoPermissionError):
                write(client)
            assert {key: admin.type(key) for key in admin.scan_iter()} == snapshot
    finally:
        client.close()
        admin.close()


def test_strategy_consumes_klines_through_its_group_without_appending(server: RedisServer) -> None:
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    strategy = redis.Redis.from_url(server.user_url("strategy"), decode_responses=True)
    stream = streams.kline_stream("ETHUSDT")
    try:
        admin.xadd(stream, {"close": "1"})
        strategy.xgroup_create(stream, streams.GROUP_STRATEGY, id="0")
        [(_, [(entry_id, fields)])] = strategy.xreadgroup(streams.GROUP_STRATEGY, "s-1", {stream: ">"})
        assert fields == {"close": "1"}
        assert strategy.xack(stream, streams.GROUP_STRATEGY, entry_id) == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            strategy.xgroup_destroy(stream, streams.GROUP_STRATEGY)  # only CREATE of the group commands
    finally:
        strategy.close()
        admin.close()


def test_the_executor_reads_the_newest_klines_without_appending(server: RedisServer) -> None:
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    executor = redis.Redis.from_url(server.user_url("executor"), decode_responses=True)
    stream = streams.kline_stream("SOLUSDT")
    try:
        admin.xadd(stream, {"close": "1"})
        admin.xadd(stream, {"close": "2"})
        [(_, newest)] = executor.xrevrange(stream, count=1)  # what a moving stop reads
        assert newest == {"close": "2"}
        with pytest.raises(redis.exceptions.NoPermissionError):
            executor.xadd(stream, {"close": "3"})
    finally:
        executor.close()
        admin.close()


def test_the_api_user_can_send_every_operator_command(server: RedisServer) -> None:
    """Each command path of shared.control (close-all's transaction included) within the api's grant."""
    import asyncio

    from redis.asyncio import Redis as AsyncRedis

    from shared import control
    from shared.parameters import StrategyParameters

    async def send_all() -> None:
        api = AsyncRedis.from_url(server.user_url("api"), decode_responses=True)
        try:
            for command in ("stop", "pause_entries", "start"):
                await control.send_command(api, command, None, "acl-test")
            await control.send_command(api, "close_position", "BTCUSDT", "acl-test")
            await control.send_command(api, "close_all", None, "acl-test", symbols=["BTCUSDT", "ETHUSDT"])
            await control.update_parameters(
                api, {"RISK_PER_TRADE": "0.5"}, "acl-test", StrategyParameters(), confirm_dangerous=True
            )
        finally:
            await api.aclose()

    asyncio.run(send_all())
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        assert (
            admin.xlen(streams.symbol_commands("ETHUSDT")) == 1 and admin.xlen(streams.symbol_commands("BTCUSDT")) == 2
        )
        assert admin.exists(streams.BOT_STATE, streams.PARAMETERS) == 2
    finally:
        admin.close()


def test_only_the_executor_marks_a_command_answered(server: RedisServer) -> None:
    """The once-across-replicas marker of each answer (``Notifier.answer``) is the executor's key."""
    key = streams.command_answer_key("c-acl", "done", "BTCUSDT")
    executor = redis.Redis.from_url(server.user_url("executor"), decode_responses=True)
    try:
        assert executor.set(key, "executor-1", nx=True, ex=60)
        assert not executor.set(key, "executor-2", nx=True, ex=60)  # a second replica stays silent
    finally:
        executor.close()
    for user in (BusUser.API, BusUser.STRATEGY, BusUser.MARKET_DATA):
        client = redis.Redis.from_url(server.user_url(user.value), decode_responses=True)
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set(streams.command_answer_key("c-forged", "done"), "x", nx=True)
        finally:
            client.close()


def test_no_password_or_a_wrong_one_is_refused(server: RedisServer) -> None:
    anonymous = redis.Redis(port=server.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(port=server.port, username="api", password="guess")
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


def test_the_socket_and_the_secrets_are_private(server: RedisServer) -> None:
    assert server.bus is not None
    if server.bus.socket is not None:
        assert stat.S_IMODE(os.stat(server.bus.socket).st_mode) == 0o700
        client = redis.Redis.from_url(server.user_url("api"))
        assert client.ping()
        client.close()
    assert stat.S_IMODE(server.bus.acl_file.stat().st_mode) == 0o600
    secrets = server.folder / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # The ACL file holds hashes only: no password in clear.
    text = server.bus.acl_file.read_text()
    assert server.bus.admin_password not in text
    assert not any(password in text for password in server.bus.passwords.values())


def test_passwords_survive_a_restart_and_rotate_when_their_file_is_removed(tmp_path: Path) -> None:
    first = redis_acl.prepare_local(tmp_path / "redis", tmp_path / "secrets")
    again = redis_acl.prepare_local(tmp_path / "redis", tmp_path / "secrets")
    assert again.passwords == first.passwords and again.admin_password == first.admin_password
    (tmp_path / "secrets" / "redis-passwords.json").unlink()
    rotated = redis_acl.prepare_local(tmp_path / "redis", tmp_path / "secrets")
    assert set(rotated.passwords.values()).isdisjoint(first.passwords.values())


def test_credentials_join_tcp_and_unix_urls() -> None:
    from redis.connection import parse_url

    tcp = parse_url(redis_acl.url_with_credentials("redis://old:x@10.0.0.1:6379/0", "api", "p/w"))
    assert (tcp["username"], tcp["password"], tcp["host"], tcp["port"]) == ("api", "p/w", "10.0.0.1", 6379)
    unix = parse_url(redis_acl.url_with_credentials("unix:///run/bot/redis.sock?db=0", "executor", "s3cret"))
    assert (unix["username"], unix["password"], unix["path"]) == ("executor", "s3cret", "/run/bot/redis.sock")


async def test_the_executor_moves_only_the_ticker_groups_of_symbols_it_holds(server: RedisServer) -> None:
    from redis.asyncio import Redis as AsyncRedis

    from services.executor.book import SymbolBook
    from services.executor.watch import TickWatch
    from shared.bus import Consumer

    admin = redis.Redis.from_url(server.url, decode_responses=True)
    executor = AsyncRedis.from_url(server.user_url("executor"), decode_responses=True)
    held, other = "SOLUSDT", "ADAUSDT"
    try:
        newest = {}
        for symbol in (held, other):
            stream = streams.ticker_stream(symbol)
            admin.xgroup_create(stream, streams.GROUP_EXECUTOR, id="$", mkstream=True)
            newest[symbol] = [admin.xadd(stream, {"price": str(i)}) for i in range(3)][-1]
        admin.set(streams.lease_key("executor", held), "ex-1", px=60_000)
        admin.set(streams.lease_key("executor", other), "ex-2", px=60_000)
        consumer = Consumer(executor, group=streams.GROUP_EXECUTOR, name="ex-1", handler=lambda s, e: None)  # type: ignore[arg-type, return-value]
        watch = TickWatch(executor, consumer, "executor", "ex-1")
        await watch.sync({held: SymbolBook(held), other: SymbolBook(other)})  # flat: neither is read
        delivered = {s: admin.xinfo_groups(streams.ticker_stream(s))[0]["last-delivered-id"] for s in (held, other)}
        assert delivered[held] == newest[held]  # moved past its ticks, never read
        assert delivered[other] == "0-0"  # another replica holds it: untouched
        assert not consumer.streams
    finally:
        await executor.aclose()
        admin.close()
