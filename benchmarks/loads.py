"""Cliente HTTP mínimo e geradores de carga do benchmark.

O cliente fala HTTP/1.1 direto no socket, com conexões keep-alive, e não usa
http.client: o gerador de carga divide os mesmos dois núcleos com o cluster
medido, e cada microssegundo gasto aqui é tirado dos nós. O mesmo cliente mede
o nó Raft e o etcd, então o custo dele pesa igual nos dois lados.
"""

from __future__ import annotations

import math
import resource
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

# Uma requisição sem resposta por este tempo conta como erro, e a conexão é
# refeita. Fica acima do prazo de 5 s que o nó dá a um cliente antes do 503.
REQUEST_TIMEOUT_S = 10.0
# Depois do fim da carga, quanto tempo esperamos as respostas ainda pendentes.
DRAIN_TIMEOUT_S = 10.0

# Monta os bytes de uma requisição a partir de (cliente, sequência).
RequestBuilder = Callable[[int, int], bytes]


class ProtocolError(Exception):
    """Resposta HTTP que este cliente não sabe ler."""


class HttpConnection:
    """Uma conexão HTTP/1.1 keep-alive, com no máximo uma requisição pendente."""

    def __init__(self, host: str, port: int, timeout: float = REQUEST_TIMEOUT_S):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: Optional[socket.socket] = None
        self.buffer = bytearray()

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # Sem TCP_NODELAY, Nagle e o ACK atrasado seguram pequenas requisições.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def request(self, data: bytes) -> tuple:
        """Envia `data` e espera a resposta inteira; devolve (status, corpo).

        Levanta OSError (inclusive socket.timeout) ou ProtocolError; nesses
        casos a conexão fica fechada e a próxima chamada abre outra.
        """
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(data)
            while True:
                parsed = self.take_response()
                if parsed is not None:
                    status, body, closing = parsed
                    if closing:
                        self.close()
                    return status, body
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("o servidor fechou a conexão antes de responder")
                self.buffer += chunk
        except (OSError, ProtocolError):
            self.close()
            raise

    def take_response(self) -> Optional[tuple]:
        """Tira do buffer uma resposta completa: (status, corpo, fechar_conexão).

        Devolve None enquanto a resposta não chegou inteira.
        """
        buffer = self.buffer
        header_end = buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return None
        lines = bytes(buffer[:header_end]).decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"linha de status inválida: {lines[0]!r}") from None
        length = 0
        chunked = False
        closing = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                closing = value.strip().lower() == "close"
        body_start = header_end + 4
        if chunked:
            parsed = _parse_chunked(buffer, body_start)
            if parsed is None:
                return None
            body, end = parsed
        else:
            end = body_start + length
            if len(buffer) < end:
                return None
            body = bytes(buffer[body_start:end])
        del buffer[:end]
        return status, body, closing


def _parse_chunked(buffer: bytearray, start: int) -> Optional[tuple]:
    """Lê um corpo em partes (chunked); devolve (corpo, fim) ou None se incompleto."""
    parts = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        except ValueError:
            raise ProtocolError("tamanho de parte inválido em resposta chunked") from None
        data_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        if len(buffer) < data_start + size + 2:
            return None
        parts.append(bytes(buffer[data_start:data_start + size]))
        position = data_start + size + 2


def percentile(sorted_values: list, fraction: float) -> Optional[float]:
    """Percentil pelo posto mais próximo (`fraction` de 0 a 1) de uma lista ordenada."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """Resultado de uma carga: contagens, tempo e latências (em segundos)."""

    clients: int
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    latencies: list = field(default_factory=list)
    error_samples: list = field(default_factory=list)

    def summary(self) -> dict:
        """Resumo em milissegundos e operações por segundo, para o JSON."""
        ordered = sorted(self.latencies)
        ms = lambda value: None if value is None else round(value * 1000, 3)  # noqa: E731
        return {
            "clients": self.clients,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.ok / self.seconds, 1) if self.seconds > 0 else 0.0,
            "p50_ms": ms(percentile(ordered, 0.50)),
            "p99_ms": ms(percentile(ordered, 0.99)),
            "mean_ms": ms(sum(ordered) / len(ordered)) if ordered else None,
            "max_ms": ms(ordered[-1]) if ordered else None,
            "client_cpu_s": round(self.client_cpu_seconds, 3),
            "error_samples": self.error_samples[:5],
        }

    def note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Client:
    __slots__ = ("index", "connection", "sequence", "sent_at", "busy", "retry_at")

    def __init__(self, index: int, connection: HttpConnection):
        self.index = index
        self.connection = connection
        self.sequence = 0
        self.sent_at = 0.0
        self.busy = False
        self.retry_at = 0.0


def run_load(endpoints: list, build_request: RequestBuilder, *, clients: int,
             duration: float, max_ops: int, ok_statuses: tuple = (200,),
             warmup: float = 0.0,
             progress: Optional[Callable[[int, float], None]] = None) -> LoadResult:
    """Roda `clients` clientes, cada um na sua conexão, por até `duration` s.

    Cada cliente manda uma requisição, espera a resposta e manda a próxima
    (carga fechada). A carga para ao chegar em `duration` segundos ou em
    `max_ops` respostas, o que vier primeiro. As respostas dos `warmup`
    segundos iniciais não entram no resultado. `endpoints` é uma lista de
    (host, porta), e o cliente i usa endpoints[i % len(endpoints)].
    """
    result = LoadResult(clients=clients)
    selector = selectors.DefaultSelector()
    everyone = []
    try:
        for index in range(clients):
            host, port = endpoints[index % len(endpoints)]
            connection = HttpConnection(host, port)
            connection.connect()
            connection.sock.setblocking(False)
            client = _Client(index, connection)
            everyone.append(client)
            selector.register(connection.sock, selectors.EVENT_READ, client)
        _drive(selector, everyone, build_request, result, duration, max_ops,
               ok_statuses, warmup, progress)
    finally:
        selector.close()
        for client in everyone:
            client.connection.close()
    return result


def _drive(selector: selectors.BaseSelector, everyone: list, build_request: RequestBuilder,
           result: LoadResult, duration: float, max_ops: int, ok_statuses: tuple,
           warmup: float, progress: Optional[Callable[[int, float], None]]) -> None:
    cpu_start = _cpu_seconds()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration
    drain_until = stop_at + DRAIN_TIMEOUT_S
    last_progress = started

    def send(client: _Client, now: float) -> None:
        data = build_request(client.index, client.sequence)
        client.sequence += 1
        client.sent_at = now
        client.busy = True
        client.connection.sock.sendall(data)

    def reconnect(client: _Client, now: float) -> None:
        try:
            selector.unregister(client.connection.sock)
        except (KeyError, ValueError):
            pass
        client.connection.close()
        client.busy = False
        client.retry_at = now + 0.05

    now = time.perf_counter()
    for client in everyone:
        send(client, now)

    while True:
        now = time.perf_counter()
        accepting = now < stop_at and result.ok + result.errors < max_ops
        if not accepting and not any(client.busy for client in everyone):
            break
        if now >= drain_until:
            for client in everyone:
                if client.busy:
                    result.note_error("sem resposta até o fim da espera final")
            break
        for event_key, _ in selector.select(timeout=0.05):
            client = event_key.data
            try:
                chunk = client.connection.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("o servidor fechou a conexão")
                client.connection.buffer += chunk
                parsed = client.connection.take_response()
            except (OSError, ProtocolError) as error:
                result.note_error(f"{type(error).__name__}: {error}")
                reconnect(client, time.perf_counter())
                continue
            if parsed is None:
                continue
            finished = time.perf_counter()
            status, body, closing = parsed
            client.busy = False
            if client.sent_at >= measure_from:
                if status in ok_statuses:
                    result.ok += 1
                    result.latencies.append(finished - client.sent_at)
                else:
                    result.note_error(f"HTTP {status}: {body[:120]!r}")
            if closing:
                reconnect(client, finished)
                continue
            if finished < stop_at and result.ok + result.errors < max_ops:
                try:
                    send(client, finished)
                except OSError as error:
                    result.note_error(f"{type(error).__name__}: {error}")
                    reconnect(client, finished)
        now = time.perf_counter()
        # Prazo por requisição e reconexão de clientes que perderam a conexão.
        for client in everyone:
            if client.busy and now - client.sent_at > REQUEST_TIMEOUT_S:
                result.note_error(f"sem resposta em {REQUEST_TIMEOUT_S:.0f} s")
                reconnect(client, now)
            elif (not client.busy and client.connection.sock is None
                  and now >= client.retry_at and now < stop_at):
                try:
                    client.connection.connect()
                    client.connection.sock.setblocking(False)
                    selector.register(client.connection.sock, selectors.EVENT_READ, client)
                    send(client, now)
                except OSError as error:
                    result.note_error(f"reconexão falhou: {error}")
                    client.connection.close()
                    client.retry_at = now + 0.05
        if progress is not None and now - last_progress >= 0.5:
            last_progress = now
            progress(result.ok, now - started)
    ended = time.perf_counter()
    result.seconds = max(1e-9, ended - max(measure_from, started))
    result.client_cpu_seconds = _cpu_seconds() - cpu_start
