#!/usr/bin/env python3
"""Entradas hostis: fuzz limitado contra todos os endpoints de um cluster real.

Três nós (ou `--nodes`) rodam com `--fault-injection` e, por padrão, com um
segredo de cluster. O script manda `--requests` requisições sorteadas a partir
de `--seed`, todas inválidas ou inofensivas:

  - RPCs Raft (`/raft/request_vote`, `/raft/append_entries`) com campos
    faltando, tipos errados, termos e índices absurdos, entradas de formato
    errado, JSON truncado ou malformado, assinados ou não;
  - RPCs Raft válidos mas de um termo antigo, com índices absurdos, que o nó
    precisa recusar sem mudar nada;
  - a API de clientes (`/kv/...`) com corpos inválidos e chaves estranhas;
  - `/admin/partition` e `/status` com corpos e métodos errados;
  - corpos grandes demais, Content-Length falso, envio em partes, linhas de
    pedido e cabeçalhos malformados, métodos desconhecidos, lixo binário, e
    dois pedidos seguidos na mesma conexão.

Ao mesmo tempo, clientes lentos mandam pedidos um byte por vez, conexões
abertas ficam sem mandar nada, e uma sonda lê uma chave conhecida e o /status
de todos os nós. Um dos nós, sorteado, recebe ainda mais conexões do que tem
vagas (`--stalled-connections`): cada uma começa um pedido e manda um byte a
cada meio segundo, sem nunca terminar, e é reaberta quando o nó a fecha. O
script confere:

  - cada resposta tem o status esperado;
  - nenhum nó morreu nem registrou erro interno;
  - a sonda foi atendida o tempo todo, também pelo nó inundado;
  - não houve eleição (termo e líder iguais do começo ao fim);
  - a memória (VmRSS) de cada nó ficou limitada;
  - o estado do cluster é o mesmo de antes.

Uso:

    python3 tests/fuzz.py --requests 20000 --seed 1
    python3 tests/fuzz.py --requests 5000 --no-secret --idle-connections 200
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from robustness_util import (Counter, LocalCluster, client_request,  # noqa: E402
                             bullet, exit_on_sigterm, indent, resident_memory_kib)
from raft_distribuido import (MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_KEY_LENGTH,  # noqa: E402
                              MAX_RAFT_BODY_BYTES, MAX_WIRE_INTEGER, SIGNATURE_HEADER,
                              _closed_or_dirty, sign_request)

SECRET = "segredo-do-fuzz"

# Chaves gravadas antes do fuzz; a sonda lê a primeira o tempo todo.
KNOWN_KEYS = {"fuzz-conhecida-0": 0, "fuzz-conhecida-1": {"lista": [1, 2]},
              "fuzz-conhecida-2": "ação"}
PROBE_KEY = "fuzz-conhecida-0"

# Campos do /status que nenhum pedido rejeitado pode mudar.
STABLE_FIELDS = ("term", "voted_for", "leader_id", "commit_index", "last_applied",
                 "last_log_index", "last_log_term")

# Uma leitura da sonda mais lenta que isso conta como falha de atendimento.
PROBE_TIMEOUT = 3.0
PROBE_INTERVAL = 0.2

# Crescimento máximo aceito de VmRSS de um nó durante o fuzz, em KiB. Alguns
# handlers lendo corpos de 1 MiB ao mesmo tempo cabem com folga, mas um
# vazamento de alguns KiB por pedido passaria disso em 20 000 pedidos.
RSS_GROWTH_LIMIT_KIB = 64 * 1024

# Prazo de cada requisição do fuzz.
REQUEST_TIMEOUT = 10.0

# Começos de pedido das conexões travadas: uma para nos cabeçalhos, a outra no
# corpo. Com um byte a cada STALL_INTERVAL, nenhuma chega ao fim em menos de
# nove horas (o limite de uma linha de cabeçalho é de 64 KiB).
STALL_PREFIXES = (b"GET /status HTTP/1.1\r\nHost: travada\r\nX-Travada: ",
                  b"PUT /kv/fuzz HTTP/1.1\r\nContent-Length: 900000\r\n\r\n{")
STALL_INTERVAL = 0.5
# Quantas conexões travadas são (re)abertas no máximo por rodada.
STALL_OPEN_PER_ROUND = 64

# Números que nenhum campo inteiro aceita.
ABSURD_INTEGERS = (-1, -2**63, MAX_WIRE_INTEGER + 1, 2**64, 10**100)
WRONG_TYPES = ("5", 1.5, None, [], {}, True, False, [1], {"term": 1})
BAD_STRINGS = ("", 7, None, [], {}, True, "x" * 65)
BAD_COMMANDS = (
    "put", 5, [], True,
    {"op": "incr", "key": "a"},
    {"op": None, "key": "a"},
    {"op": "put", "key": "", "value": 1},
    {"op": "put", "key": "k" * (MAX_KEY_LENGTH + 1), "value": 1},
    {"op": "put", "key": 5, "value": 1},
    {"op": "put", "key": "a"},
    {"op": "put", "key": "a", "value": 1, "client_id": "c"},
    {"op": "put", "key": "a", "value": 1, "sequence": 3},
    {"op": "delete", "key": "a", "client_id": "c", "sequence": 0},
    {"op": "delete", "key": "a", "client_id": "c", "sequence": True},
    {"op": "delete", "key": "a", "client_id": "c", "sequence": MAX_WIRE_INTEGER + 1},
    {"op": "delete", "key": "a", "client_id": "c" * 65, "sequence": 1},
    {"op": "delete", "key": "a", "client_id": 9, "sequence": 1},
)


# ---- casos -----------------------------------------------------------------

@dataclass
class FuzzCase:
    """Uma requisição do fuzz e as respostas aceitáveis para ela."""

    family: str
    data: bytes
    expected: tuple
    # Sem resposta também é aceitável (o nó pode fechar a conexão antes).
    may_close: bool = False
    half_close: bool = False
    method: str = "POST"
    # Confere o corpo de uma resposta 200; devolve o problema ou None.
    check_body: Optional[Callable[[Any], Optional[str]]] = None
    # Quantas respostas ler da mesma conexão (2 nos pedidos em sequência).
    responses: int = 1


def build_request(method: str, path: str, body: Optional[bytes] = None, *,
                  headers: Optional[dict] = None, content_length: Any = "auto",
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    if body is not None:
        lines.append("Content-Type: application/json")
    if content_length == "auto":
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


class CaseGenerator:
    """Sorteia casos de fuzz a partir de uma semente."""

    def __init__(self, rng: random.Random, secret: Optional[bytes], peer_urls: list,
                 current_term: Callable[[], int]):
        self.rng = rng
        self.secret = secret
        self.peer_urls = peer_urls
        self.current_term = current_term
        self.families = (
            (self.raft_mutation, 30),
            (self.raft_stale, 6),
            (self.raft_bad_json, 10),
            (self.client_put_invalid, 12),
            (self.client_delete_invalid, 4),
            (self.client_get_strange_key, 8),
            (self.admin_requests, 8),
            (self.status_requests, 4),
            (self.wrong_methods, 8),
            (self.oversized, 3),
            (self.bad_framing, 7),
            (self.pipelined, 4),
            (self.unknown_paths, 3),
        )

    def next_case(self) -> FuzzCase:
        functions = [function for function, _ in self.families]
        weights = [weight for _, weight in self.families]
        return self.rng.choices(functions, weights)[0]()

    # ---- apoio -------------------------------------------------------------

    def _sign(self, method: str, path: str, body: bytes) -> tuple:
        """Devolve os cabeçalhos de assinatura e o status que passa a ser o esperado.

        Sem segredo, nada é assinado, e o status esperado continua o do
        conteúdo (None). Com segredo, um em cada dez pedidos sai sem assinatura
        ou com uma assinatura de outro segredo e precisa receber 401.
        """
        if self.secret is None:
            return {}, None
        choice = self.rng.random()
        if choice < 0.05:
            return {}, 401
        if choice < 0.1:
            return {SIGNATURE_HEADER: sign_request(b"outro-segredo-qualquer", method, path,
                                                   body)}, 401
        return {SIGNATURE_HEADER: sign_request(self.secret, method, path, body)}, None

    def _signed_case(self, family: str, method: str, path: str, body: bytes,
                     expected: tuple, **options: Any) -> FuzzCase:
        headers, override = self._sign(method, path, body)
        if override is not None:
            expected = (override,)
            options.pop("check_body", None)
        return FuzzCase(family, build_request(method, path, body, headers=headers),
                        expected, method=method, **options)

    def _json(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=self.rng.random() < 0.5).encode("utf-8")

    def _int(self, low: int = 0, high: int = MAX_WIRE_INTEGER) -> int:
        if self.rng.random() < 0.3:
            return self.rng.choice((low, high))
        return self.rng.randint(low, min(high, low + 10**self.rng.randint(1, 16)))

    def _sender(self) -> dict:
        url = self.rng.choice(self.peer_urls) if self.rng.random() < 0.7 else \
            f"http://127.0.0.1:{self.rng.randint(1, 65535)}"
        return {"sender_id": f"n{self.rng.randint(0, 9)}", "sender_url": url}

    def _valid_vote(self, term: int) -> dict:
        message = {"term": term, "candidate_id": f"n{self.rng.randint(0, 9)}",
                   "last_log_index": self._int(), "last_log_term": self._int()}
        message.update(self._sender())
        return message

    def _valid_append(self, term: int) -> dict:
        prev_index = self._int() if self.rng.random() < 0.8 else 0
        prev_term = 0 if prev_index == 0 else self.rng.randint(0, term)
        entry_count = self.rng.choice((0, 0, 1, 2, 3, 10))
        entries = []
        entry_term = max(prev_term, 1)
        for offset in range(entry_count):
            entry_term = self.rng.randint(entry_term, term)
            command = self.rng.choice((None, {"op": "put", "key": "fuzz", "value": offset},
                                       {"op": "delete", "key": "fuzz"}))
            entries.append({"term": entry_term, "index": prev_index + 1 + offset,
                            "command": command})
        if prev_index + entry_count > MAX_WIRE_INTEGER:
            entries = []
        message = {"term": term, "leader_id": f"n{self.rng.randint(0, 9)}",
                   "prev_log_index": prev_index, "prev_log_term": prev_term,
                   "entries": entries, "leader_commit": self._int()}
        message.update(self._sender())
        return message

    # ---- famílias ----------------------------------------------------------

    def raft_mutation(self) -> FuzzCase:
        """RPC Raft com uma ou mais alterações que o tornam inválido (400)."""
        term = self._int(1)
        if self.rng.random() < 0.5:
            path = "/raft/request_vote"
            message = self._valid_vote(term)
            int_fields = ("term", "last_log_index", "last_log_term")
            string_fields = ("candidate_id", "sender_id", "sender_url")
            mutations = [self._mutate_int, self._mutate_string, self._drop_field]
        else:
            path = "/raft/append_entries"
            message = self._valid_append(term)
            int_fields = ("term", "prev_log_index", "prev_log_term", "leader_commit")
            string_fields = ("leader_id", "sender_id", "sender_url")
            mutations = [self._mutate_int, self._mutate_string, self._drop_field,
                         self._mutate_entries, self._mutate_entries, self._mutate_prev_zero]
        for _ in range(self.rng.randint(1, 3)):
            self.rng.choice(mutations)(message, int_fields, string_fields)
        return self._signed_case("raft inválido", "POST", path, self._json(message), (400,))

    def _mutate_int(self, message: dict, int_fields: tuple, _strings: tuple) -> None:
        name = self.rng.choice(int_fields)
        if self.rng.random() < 0.5:
            message[name] = self.rng.choice(WRONG_TYPES)
        elif name == "term" and self.rng.random() < 0.3:
            message[name] = 0
        else:
            message[name] = self.rng.choice(ABSURD_INTEGERS)

    def _mutate_string(self, message: dict, _ints: tuple, string_fields: tuple) -> None:
        name = self.rng.choice(string_fields)
        value = self.rng.choice(BAD_STRINGS)
        if name == "sender_url" and value == "x" * 65:
            value = "http://" + "x" * 510
        message[name] = value

    def _drop_field(self, message: dict, int_fields: tuple, string_fields: tuple) -> None:
        name = self.rng.choice(int_fields + string_fields
                               + (("entries",) if "entries" in message else ()))
        message.pop(name, None)

    def _mutate_prev_zero(self, message: dict, _ints: tuple, _strings: tuple) -> None:
        message["prev_log_index"] = 0
        message["prev_log_term"] = self.rng.randint(1, 50)

    def _mutate_entries(self, message: dict, _ints: tuple, _strings: tuple) -> None:
        term = message.get("term") if isinstance(message.get("term"), int) else 5
        prev = message.get("prev_log_index")
        prev = prev if isinstance(prev, int) and 0 <= prev < MAX_WIRE_INTEGER - 5000 else 0
        message["prev_log_index"] = prev
        if prev == 0:
            message["prev_log_term"] = 0
        base_term = max(1, min(term if isinstance(term, int) and term > 0 else 1,
                               MAX_WIRE_INTEGER))
        message["term"] = base_term
        good = {"term": base_term, "index": prev + 1, "command": None}
        kind = self.rng.randrange(9)
        if kind == 0:
            message["entries"] = self.rng.choice(({}, "entradas", 5, None, True))
        elif kind == 1:
            message["entries"] = [self.rng.choice((5, "x", [], None, True))]
        elif kind == 2:
            message["entries"] = [good, dict(good, index=prev + 3)]
        elif kind == 3:
            message["entries"] = [dict(good, term=base_term + 1)]
        elif kind == 4:
            message["entries"] = [dict(good, term=self.rng.choice((0, -1, "1", None)))]
        elif kind == 5:
            message["entries"] = [dict(good, index=self.rng.choice((0, -1, prev, "1")))]
        elif kind == 6:
            message["entries"] = [dict(good, command=self.rng.choice(BAD_COMMANDS))]
        elif kind == 7:
            # Muitas entradas boas e a última errada: o pedido inteiro é recusado.
            count = self.rng.randint(100, 3000)
            entries = [{"term": base_term, "index": prev + 1 + offset,
                        "command": {"op": "put", "key": "fuzz", "value": offset}}
                       for offset in range(count)]
            entries[-1]["index"] += 1
            message["entries"] = entries
        else:
            # Termos que decrescem dentro do lote.
            if base_term < 2:
                message["term"] = base_term = 2
            message["prev_log_term"] = 0 if prev == 0 else 1
            message["entries"] = [dict(good, term=2), dict(good, term=1, index=prev + 2)]

    def raft_stale(self) -> FuzzCase:
        """RPC válido de um termo antigo, com índices absurdos: 200 e nada muda."""
        current = self.current_term()
        if current < 2:
            # No termo 1 não existe termo antigo, e um pedido do termo atual
            # seria aceito como se viesse do líder.
            return self.raft_mutation()
        term = self.rng.randint(1, current - 1)
        if self.rng.random() < 0.5:
            path = "/raft/request_vote"
            message = self._valid_vote(term)
            message["last_log_index"] = message["last_log_term"] = MAX_WIRE_INTEGER

            def check(payload: Any) -> Optional[str]:
                if not isinstance(payload, dict) or payload.get("vote_granted") is not False:
                    return f"voto concedido a um candidato de termo antigo: {payload}"
                return None
        else:
            path = "/raft/append_entries"
            message = self._valid_append(term)
            message["leader_commit"] = MAX_WIRE_INTEGER

            def check(payload: Any) -> Optional[str]:
                if not isinstance(payload, dict) or payload.get("success") is not False:
                    return f"AppendEntries de termo antigo aceito: {payload}"
                return None
        return self._signed_case("raft de termo antigo", "POST", path, self._json(message),
                                 (200,), check_body=check)

    def raft_bad_json(self) -> FuzzCase:
        """Corpo que não é JSON, ou JSON que não é um objeto (400)."""
        path = self.rng.choice(("/raft/request_vote", "/raft/append_entries"))
        body = self._bad_json_body(self._json(self._valid_append(self._int(1))))
        return self._signed_case("raft com JSON ruim", "POST", path, body, (400,))

    def _bad_json_body(self, valid: bytes) -> bytes:
        kind = self.rng.randrange(12)
        if kind == 0:
            return valid[:self.rng.randrange(len(valid))]
        if kind == 1:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200)))
        if kind == 2:
            return b'{"term": NaN}'
        if kind == 3:
            return b'{"term": Infinity, "x": -Infinity}'
        if kind == 4:
            depth = self.rng.choice((1000, 100_000, 500_000))
            return b"[" * depth + b"]" * depth
        if kind == 5:
            return b'{"term": ' + b"9" * self.rng.choice((5000, 50_000)) + b"}"
        if kind == 6:
            return self.rng.choice((b"[]", b'"texto"', b"42", b"null", b"true", b"[1,2]"))
        if kind == 7:
            return b"\xff\xfe" + valid
        if kind == 8:
            return valid.replace(b"{", b"{\x00", 1)
        if kind == 9:
            return b""
        if kind == 10:
            return b'{"term": 1, "term": "dois"}'
        return valid + b"}" * self.rng.randint(1, 3)

    def _client_path(self, key: Optional[str] = None) -> str:
        key = key or f"fuzz-{self.rng.randrange(1000)}"
        return "/kv/" + key

    def client_put_invalid(self) -> FuzzCase:
        """PUT com corpo inválido ou chave longa demais (400)."""
        kind = self.rng.randrange(8)
        path = self._client_path()
        if kind == 0:
            body = self._bad_json_body(b'{"value": 1}')
        elif kind == 1:
            body = self._json(self.rng.choice(([], "valor", 5, None, {"valor": 1}, {})))
        elif kind == 2:
            body = self._json({"value": 1, "client_id": self.rng.choice(BAD_STRINGS[:6] + (
                "c" * 65,)), "sequence": 1})
        elif kind == 3:
            body = self._json({"value": 1, "client_id": "c",
                               "sequence": self.rng.choice((0, -1, "1", True, 1.5, None,
                                                            MAX_WIRE_INTEGER + 1))})
        elif kind == 4:
            path = "/kv/" + "k" * self.rng.randint(MAX_KEY_LENGTH + 1, 5000)
            body = b'{"value": 1}'
        elif kind == 5:
            path = "/kv/"
            body = b'{"value": 1}'
        elif kind == 6:
            body = b'{"value": NaN}'
        else:
            body = b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        return FuzzCase("cliente PUT inválido", build_request("PUT", path, body), (400,),
                        method="PUT")

    def client_delete_invalid(self) -> FuzzCase:
        """DELETE com corpo que não é objeto ou sessão inválida (400)."""
        body = self.rng.choice((b"[]", b'"x"', b"5", b"{", b'{"client_id": 5, "sequence": 1}',
                                b'{"client_id": "c"}', b"\xff"))
        return FuzzCase("cliente DELETE inválido",
                        build_request("DELETE", self._client_path(), body), (400,),
                        method="DELETE")

    def client_get_strange_key(self) -> FuzzCase:
        """GET de chaves estranhas: 404 (nenhuma existe) ou 400 (vazia ou longa)."""
        choices = ("%00", "%ff%fe", "..%2F..%2Fetc%2Fpasswd", "a%20b", "ação", "%E2%82%AC",
                   "x?y=z", "x#frag", "%", "%zz", "a/b/c", ";", "\u00e7" * 10,
                   "%C3%A7" * (MAX_KEY_LENGTH + 1), "k" * (MAX_KEY_LENGTH + 1))
        key = self.rng.choice(choices)
        path = "/kv/" + key
        raw_path = path.encode("utf-8").decode("latin-1")
        expected = (404, 400)
        return FuzzCase("cliente GET de chave estranha",
                        build_request("GET", raw_path), expected, method="GET")

    def admin_requests(self) -> FuzzCase:
        """Injeção de falhas com corpos inválidos (400), métodos errados (405) ou leitura."""
        kind = self.rng.randrange(6)
        path = "/admin/partition"
        if kind == 0:
            return self._signed_case("admin GET", "GET", path, b"", (200,),
                                     check_body=self._check_no_partition)
        if kind == 1:
            return self._signed_case("admin POST vazio", "POST", path,
                                     b'{"blocked": []}', (200,),
                                     check_body=self._check_no_partition)
        if kind == 2:
            method = self.rng.choice(("PUT", "DELETE", "PATCH"))
            return self._signed_case("admin método errado", method, path, b"", (405,))
        bodies = (b'{"blocked": "http://127.0.0.1:1"}', b'{"blocked": [5]}',
                  b'{"blocked": [null]}', b'{"bloqueados": []}', b"[]", b"{",
                  b'{"blocked": ["http://127.0.0.1:1"]}', b'{"blocked": {}}')
        return self._signed_case("admin inválido", "POST", path, self.rng.choice(bodies),
                                 (400,))

    @staticmethod
    def _check_no_partition(payload: Any) -> Optional[str]:
        if not isinstance(payload, dict) or payload.get("blocked") != []:
            return f"/admin/partition mostra uma partição que ninguém pediu: {payload}"
        return None

    def status_requests(self) -> FuzzCase:
        if self.rng.random() < 0.5:
            method = self.rng.choice(("GET", "HEAD"))
            query = self.rng.choice(("", "?x=1", "?" + "a" * 2000, "#x"))
            return FuzzCase("status", build_request(method, "/status" + query), (200,),
                            method=method)
        method = self.rng.choice(("POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
        return FuzzCase("status método errado", build_request(method, "/status", b"{}"),
                        (405,), method=method)

    def wrong_methods(self) -> FuzzCase:
        kind = self.rng.randrange(3)
        if kind == 0:
            method = self.rng.choice(("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"))
            path = self.rng.choice(("/raft/request_vote", "/raft/append_entries"))
            return self._signed_case("raft método errado", method, path, b"", (405,))
        if kind == 1:
            method = self.rng.choice(("PATCH", "OPTIONS", "POST"))
            return FuzzCase("cliente método errado",
                            build_request(method, self._client_path(), b"{}"), (405,),
                            method=method)
        method = self.rng.choice(("TRACE", "CONNECT", "FOO", "get", "PROPFIND", "M-SEARCH"))
        return FuzzCase("método desconhecido", build_request(method, "/status"), (501,),
                        method=method)

    def oversized(self) -> FuzzCase:
        path = self.rng.choice(("/raft/append_entries", "/kv/grande", "/admin/partition"))
        method = "PUT" if path.startswith("/kv") else "POST"
        # Os RPCs Raft aceitam corpos maiores que os clientes: um AppendEntries
        # pode levar uma entrada do maior PUT aceito.
        limit = MAX_RAFT_BODY_BYTES if path.startswith("/raft/") else MAX_BODY_BYTES
        if self.rng.random() < 0.6:
            declared = self.rng.choice((limit + 1, 2**31, 10**15))
            data = build_request(method, path, None, content_length=declared)
            return FuzzCase("corpo declarado grande demais", data, (413, 401), method=method)
        body = b'{"value": "' + b"x" * (limit + 10) + b'"}'
        return FuzzCase("corpo grande demais enviado", build_request(method, path, body),
                        (413, 401), may_close=True, method=method)

    def bad_framing(self) -> FuzzCase:
        kind = self.rng.randrange(10)
        if kind == 0:
            length = self.rng.choice(("abc", "-1", "1.5", "", "0x10", "1 2", "+2", "1_0",
                                      "\u00b2"))
            return FuzzCase("Content-Length inválido",
                            build_request("PUT", "/kv/x", b"{}", content_length=length),
                            (400,), method="PUT")
        if kind == 1:
            data = build_request("PUT", "/kv/x", None,
                                 headers={"Transfer-Encoding": "chunked"})
            return FuzzCase("envio em partes", data + b"5\r\nabcde\r\n0\r\n\r\n", (411,),
                            method="PUT")
        if kind == 2:
            data = build_request("PUT", "/kv/x", None, content_length=100) + b'{"value"'
            return FuzzCase("corpo incompleto", data, (400,), half_close=True, method="PUT")
        if kind == 3:
            junk = self.rng.choice((b"OLA\r\n\r\n", b"GET\r\n\r\n",
                                    b"GET /status HTTP/1.1 extra\r\n\r\n",
                                    b"GET /status FTP/1.0\r\n\r\n"))
            return FuzzCase("linha de pedido inválida", junk, (400,), method="GET")
        if kind == 4:
            return FuzzCase("versão de HTTP", build_request("GET", "/status",
                                                            version="HTTP/2.0"),
                            (505,), method="GET")
        if kind == 5:
            data = build_request("GET", "/status", headers={"X-Grande": "a" * 70_000})
            return FuzzCase("cabeçalho longo demais", data, (431, 400), method="GET")
        if kind == 6:
            headers = {f"X-H{number}": "1" for number in range(150)}
            return FuzzCase("cabeçalhos demais", build_request("GET", "/status",
                                                              headers=headers),
                            (431,), method="GET")
        if kind == 7:
            return FuzzCase("URI longa demais",
                            build_request("GET", "/kv/" + "a" * 70_000), (414,), method="GET")
        if kind == 8:
            garbage = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 500)))
            return FuzzCase("lixo binário", garbage + b"\r\n\r\n", (400, 414, 431, 501, 505),
                            may_close=True, half_close=True, method="GET")
        data = build_request("GET", "/status", headers={"Content-Length": "5"}) + b"abcde"
        return FuzzCase("GET com corpo", data, (200,), method="GET")

    def pipelined(self) -> FuzzCase:
        """Um pedido inválido e um válido na mesma conexão: o segundo tem resposta."""
        first = build_request("PUT", self._client_path(), b'{"valor": 1}')
        second = build_request("GET", "/status")
        return FuzzCase("dois pedidos na mesma conexão", first + second, (400, 200),
                        method="GET", responses=2)

    def unknown_paths(self) -> FuzzCase:
        path = self.rng.choice(("/", "/kv", "/../../etc/passwd", "/status/x", "/raft/",
                                "/raft/install_snapshot", "/admin/", "/admin/kill",
                                "http://127.0.0.1/status", "*"))
        method = self.rng.choice(("GET", "POST"))
        if path.startswith("/raft/") or path.startswith("/admin/"):
            return self._signed_case("caminho desconhecido", method, path, b"", (404, 400))
        # "http://127.0.0.1/status" é a forma absoluta de /status: 200 ou 405.
        return FuzzCase("caminho desconhecido", build_request(method, path, b""),
                        (404, 400, 200, 405), method=method)


# ---- execução --------------------------------------------------------------

@dataclass
class FuzzConfig:
    seed: int
    requests: int = 2000
    nodes: int = 3
    workers: int = 2
    slow_clients: int = 6
    idle_connections: int = 64
    stalled_connections: int = MAX_CONNECTIONS + 32
    # Duração mínima da fase de fuzz: os clientes lentos, as conexões paradas
    # e a sonda continuam até ela, mesmo que os pedidos acabem antes.
    min_seconds: float = 10.0
    secret: bool = True
    keep_folder: bool = False

    def replay_command(self) -> str:
        command = (f"python3 tests/fuzz.py --seed {self.seed} --requests {self.requests} "
                   f"--min-seconds {self.min_seconds:g} "
                   f"--nodes {self.nodes} --slow-clients {self.slow_clients} "
                   f"--idle-connections {self.idle_connections} "
                   f"--stalled-connections {self.stalled_connections}")
        return command + ("" if self.secret else " --no-secret")


@dataclass
class FuzzReport:
    config: FuzzConfig
    problems: list = field(default_factory=list)
    families: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    slow_requests: Counter = field(default_factory=Counter)
    probes: int = 0
    probe_max_latency: float = 0.0
    rss_before: dict = field(default_factory=dict)
    rss_max: dict = field(default_factory=dict)
    log_lines_added: dict = field(default_factory=dict)
    idle_closed_by_node: int = 0
    stalled_node: str = ""
    stalled_opened: int = 0
    stalled_closed_by_node: int = 0
    # Pedidos de clientes lentos cuja conexão o nó inundado fechou para dar a
    # vaga a outra; aceitável só nesse nó.
    slow_evicted: int = 0
    elapsed: float = 0.0
    fuzz_seconds: float = 0.0
    folder: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        config = self.config
        lines = [f"semente: {config.seed}",
                 f"requisições do fuzz: {self.families.total()}, fase de fuzz de "
                 f"{self.fuzz_seconds:.1f} s "
                 f"({config.nodes} nós, segredo {'ligado' if config.secret else 'desligado'})",
                 "por família:", self.families.format(),
                 "por status da resposta:", self.statuses.format(),
                 f"clientes lentos (um byte por vez): {self.slow_requests.total()} pedidos "
                 f"completos, {self.slow_evicted} fechados pelo nó inundado",
                 self.slow_requests.format(),
                 f"conexões travadas no meio do pedido contra o nó {self.stalled_node}: "
                 f"{self.stalled_opened} abertas, {self.stalled_closed_by_node} fechadas "
                 f"pelo nó para dar a vaga a outras",
                 f"conexões abertas sem mandar nada: {config.idle_connections} "
                 f"({self.idle_closed_by_node} fechadas pelo nó durante o fuzz)",
                 f"sonda: {self.probes} leituras, a mais lenta em "
                 f"{self.probe_max_latency * 1000:.0f} ms",
                 "memória (VmRSS) antes e no máximo: " + ", ".join(
                     f"nó {node_id} {self.rss_before.get(node_id, 0) // 1024} -> "
                     f"{self.rss_max.get(node_id, 0) // 1024} MiB"
                     for node_id in sorted(self.rss_max)),
                 "linhas novas no log de cada nó: " + ", ".join(
                     f"nó {node_id} {count}"
                     for node_id, count in sorted(self.log_lines_added.items())),
                 f"tempo total: {self.elapsed:.1f} s"]
        if self.problems:
            lines.append(f"FALHOU: {len(self.problems)} problema(s)")
            lines.extend(bullet(problem) for problem in self.problems)
            lines.append(f"pasta com os logs dos nós: {self.folder}")
            lines.append(f"para repetir: {config.replay_command()}")
        else:
            lines.append("resultado: nenhum problema encontrado")
        return "\n".join(line for line in lines if line != "")


class _KeepOpenReader(io.BufferedReader):
    """Leitor que HTTPResponse não consegue fechar; o socket fecha no fim do `with`."""

    def close(self) -> None:
        pass


class _SharedReader:
    """Entrega o mesmo arquivo de leitura a cada HTTPResponse da conexão."""

    def __init__(self, reader):
        self.reader = reader

    def makefile(self, *_args: Any, **_options: Any):
        return self.reader


class FuzzRun:
    def __init__(self, config: FuzzConfig, output: TextIO = sys.stdout):
        self.config = config
        self.output = output
        self.report = FuzzReport(config)
        self.cluster: Optional[LocalCluster] = None
        self.secret = SECRET.encode() if config.secret else None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.remaining = config.requests
        self.findings: list = []
        self.term = 0
        self.leader_id: Optional[str] = None
        # Estado e tamanho dos logs antes do fuzz, preenchidos em _prepare().
        self.before: list = []
        self.log_sizes: list = []
        self.stalled_node: Any = None

    def say(self, text: str) -> None:
        print(text, file=self.output, flush=True)

    def run(self) -> FuzzReport:
        started = time.monotonic()
        extra = ["--fault-injection"]
        if self.secret is not None:
            extra += ["--secret", SECRET]
        self.cluster = LocalCluster(self.config.nodes, extra_args=tuple(extra))
        try:
            self.say(f"fuzz: semente {self.config.seed}, pasta {self.cluster.folder}")
            if self._prepare():
                self._fuzz()
                self._final_checks()
        finally:
            self.done.set()
            self.report.elapsed = time.monotonic() - started
            self.report.folder = self.cluster.folder
            self.report.problems[:0] = self.cluster.problems
            keep = self.config.keep_folder or bool(self.report.problems)
            self.cluster.cleanup(keep_folder=keep)
        return self.report

    # ---- preparação --------------------------------------------------------

    def _wait_leader(self, timeout: float = 15.0) -> Optional[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.cluster.agreed_leader()
            if leader is not None:
                return leader
            time.sleep(0.05)
        return None

    def _prepare(self) -> bool:
        """Sobe o cluster num termo >= 2 (para haver termos antigos) com chaves conhecidas."""
        cluster = self.cluster
        cluster.start_all()
        term = 0
        for _ in range(5):
            leader = self._wait_leader()
            if leader is None:
                self.report.problems.append("nenhum líder na partida:\n" + cluster.describe())
                return False
            term = (cluster.nodes[leader].status() or {}).get("term", 0)
            if term >= 2:
                break
            cluster.terminate(leader)
            cluster.start(leader)

        leader = self._wait_leader()
        if term < 2 or leader is None:
            self.report.problems.append("o cluster não passou do termo 1 depois de cinco "
                                        "reinícios do líder:\n" + cluster.describe())
            return False

        leader_node = cluster.nodes[leader]
        for key, value in KNOWN_KEYS.items():
            result = client_request(leader_node.host, leader_node.port, "PUT", f"/kv/{key}",
                                    json.dumps({"value": value}).encode("utf-8"), 10.0)
            if result.status != 200:
                self.report.problems.append(f"não foi possível gravar {key}: "
                                            f"{result.status} {result.payload}")
                return False
        if cluster.wait_converged(20.0, "fuzz-marcador") is None:
            self.report.problems.append("o cluster não convergiu antes do fuzz:\n"
                                        + cluster.describe())
            return False

        # Daqui em diante, nenhum pedido pode mudar termo, líder ou índices: a
        # vigia e a conferência final comparam o /status de cada nó com este.
        self.before = self._stable_statuses()
        if any(status is None for status in self.before):
            self.report.problems.append("um nó não respondeu a /status antes do fuzz:\n"
                                        + cluster.describe())
            return False
        self.term = self.before[0]["term"]
        self.leader_id = self.before[0]["leader_id"]
        self.log_sizes = [len(node.log_text().splitlines()) for node in cluster.nodes]
        for node in cluster.nodes:
            self.report.rss_before[node.node_id] = resident_memory_kib(node.process.pid) or 0
            self.report.rss_max[node.node_id] = self.report.rss_before[node.node_id]
        return True

    def _stable_statuses(self) -> list:
        statuses = self.cluster.statuses(timeout=3.0)
        return [None if status is None else {name: status[name] for name in STABLE_FIELDS}
                for status in statuses]

    # ---- fuzz --------------------------------------------------------------

    def _fuzz(self) -> None:
        threads = []
        for number in range(self.config.workers):
            threads.append(threading.Thread(target=self._worker, args=(number,),
                                            name=f"fuzz-{number}", daemon=True))
        helpers = [threading.Thread(target=self._probe, name="sonda", daemon=True),
                   threading.Thread(target=self._watch, name="vigia", daemon=True)]
        for number in range(self.config.slow_clients):
            helpers.append(threading.Thread(target=self._slow_client, args=(number,),
                                            name=f"lento-{number}", daemon=True))
        if self.config.stalled_connections > 0:
            nodes = self.cluster.nodes
            self.stalled_node = nodes[random.Random(f"{self.config.seed}-inundado")
                                      .randrange(len(nodes))]
            self.report.stalled_node = self.stalled_node.node_id
            helpers.append(threading.Thread(target=self._stall, name="travadas",
                                            daemon=True))
        idle = self._open_idle_connections()
        started = time.monotonic()
        for thread in threads + helpers:
            thread.start()
        for thread in threads:
            thread.join()
        remaining = self.config.min_seconds - (time.monotonic() - started)
        if remaining > 0:
            self.done.wait(remaining)
        self.report.fuzz_seconds = time.monotonic() - started
        self.done.set()
        for thread in helpers:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
        self.report.idle_closed_by_node = self._close_idle_connections(idle)

    def _take_request(self) -> bool:
        with self.lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def _worker(self, number: int) -> None:
        rng = random.Random(f"{self.config.seed}-fuzz-{number}")
        generator = CaseGenerator(rng, self.secret, self.cluster.urls, lambda: self.term)
        nodes = self.cluster.nodes
        while self._take_request():
            case = generator.next_case()
            node = nodes[rng.randrange(len(nodes))]
            self._run_case(case, node)

    def _run_case(self, case: FuzzCase, node) -> None:
        self.report.families.add(case.family)
        try:
            statuses, bodies = self._exchange(node, case)
        except (OSError, http.client.HTTPException) as error:
            if case.may_close:
                self.report.statuses.add("conexão fechada sem resposta (aceitável)")
                return
            self.report.statuses.add("sem resposta")
            self._finding(case, node, f"sem resposta: {error!r}")
            return
        for position, (status, body) in enumerate(zip(statuses, bodies)):
            self.report.statuses.add(str(status))
            accepted = case.expected if case.responses == 1 else (case.expected[position],)
            if status not in accepted:
                self._finding(case, node, f"HTTP {status} (esperado "
                                          f"{' ou '.join(map(str, accepted))}): "
                                          f"{body[:200]!r}")
            elif status == 200 and case.check_body is not None:
                try:
                    payload = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    payload = body[:200]
                problem = case.check_body(payload)
                if problem:
                    self._finding(case, node, problem)

    def _exchange(self, node, case: FuzzCase) -> tuple:
        statuses, bodies = [], []
        with socket.create_connection((node.host, node.port), timeout=REQUEST_TIMEOUT) as sock:
            try:
                sock.sendall(case.data)
            except (BrokenPipeError, ConnectionResetError):
                if not case.may_close:
                    raise
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
            # Um só arquivo de leitura para as respostas, para que os bytes da
            # segunda não fiquem presos no buffer da primeira.
            shared = _SharedReader(_KeepOpenReader(socket.SocketIO(sock, "rb")))
            for position in range(case.responses):
                response = http.client.HTTPResponse(shared, method=case.method)
                try:
                    response.begin()
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    if position > 0:
                        # O nó fechou a conexão depois de responder ao primeiro
                        # pedido, o que ele pode fazer depois de um erro.
                        break
                    raise
                body = response.read()
                statuses.append(response.status)
                bodies.append(body)
                if response.getheader("Connection", "").lower() == "close":
                    break
        return statuses, bodies

    def _finding(self, case: FuzzCase, node, text: str) -> None:
        with self.lock:
            self.findings.append(f"{case.family} no nó {node.node_id}: {text}\n"
                                 f"pedido: {case.data[:300]!r}")

    # ---- clientes lentos, conexões paradas, sonda e vigia ------------------

    def _slow_client(self, number: int) -> None:
        rng = random.Random(f"{self.config.seed}-lento-{number}")
        nodes = self.cluster.nodes
        while not self.done.is_set():
            node = nodes[rng.randrange(len(nodes))]
            if rng.random() < 0.5:
                data, expected, label = build_request("GET", "/status"), 200, "GET /status"
            else:
                data = build_request("PUT", "/kv/fuzz-lenta", b'{"valor": 1}')
                expected, label = 400, "PUT inválido"
            delay = rng.uniform(0.01, 0.08)
            try:
                with socket.create_connection((node.host, node.port), timeout=20) as sock:
                    for position in range(len(data)):
                        if self.done.is_set() and position < len(data) - 1:
                            return
                        sock.sendall(data[position:position + 1])
                        time.sleep(delay)
                    response = http.client.HTTPResponse(sock, method=label.split()[0])
                    response.begin()
                    response.read()
            except (OSError, http.client.HTTPException) as error:
                if node is self.stalled_node:
                    # O nó inundado fecha a conexão que espera há mais tempo, e
                    # a de um cliente lento costuma ser ela.
                    with self.lock:
                        self.report.slow_evicted += 1
                    continue
                with self.lock:
                    self.findings.append(f"cliente lento {number} no nó {node.node_id} "
                                         f"({label}) sem resposta: {error!r}")
                continue
            self.report.slow_requests.add(f"{label} -> {response.status}")
            if response.status != expected:
                with self.lock:
                    self.findings.append(f"cliente lento {number} no nó {node.node_id}: "
                                         f"{label} respondeu {response.status}, esperado "
                                         f"{expected}")

    def _open_idle_connections(self) -> list:
        sockets = []
        nodes = self.cluster.nodes
        for number in range(self.config.idle_connections):
            node = nodes[number % len(nodes)]
            try:
                sockets.append(socket.create_connection((node.host, node.port), timeout=5))
            except OSError as error:
                self.report.problems.append(f"não foi possível abrir a conexão parada "
                                            f"{number} com o nó {node.node_id}: {error}")
                break
        return sockets

    @staticmethod
    def _close_idle_connections(sockets: list) -> int:
        """Fecha as conexões paradas e devolve quantas o nó já tinha fechado."""
        closed_by_node = sum(1 for sock in sockets if _closed_or_dirty(sock))
        for sock in sockets:
            sock.close()
        return closed_by_node

    def _stall(self) -> None:
        """Mantém `stalled_connections` pedidos pela metade no nó inundado."""
        node = self.stalled_node
        sockets: list = []
        while not self.done.is_set():
            opened = 0
            while (len(sockets) < self.config.stalled_connections
                   and opened < STALL_OPEN_PER_ROUND and not self.done.is_set()):
                prefix = STALL_PREFIXES[self.report.stalled_opened % 2]
                try:
                    sock = socket.create_connection((node.host, node.port), timeout=5)
                    sock.sendall(prefix)
                except OSError:
                    break
                sock.setblocking(False)
                sockets.append(sock)
                opened += 1
                self.report.stalled_opened += 1
            alive = []
            for sock in sockets:
                try:
                    if _closed_or_dirty(sock):
                        raise ConnectionResetError
                    sock.send(b"a")
                    alive.append(sock)
                except BlockingIOError:
                    alive.append(sock)  # O nó ainda não leu os bytes anteriores.
                except OSError:
                    self.report.stalled_closed_by_node += 1
                    sock.close()
            sockets = alive
            self.done.wait(STALL_INTERVAL)
        for sock in sockets:
            sock.close()

    def _probe(self) -> None:
        rng = random.Random(f"{self.config.seed}-sonda")
        nodes = self.cluster.nodes
        while not self.done.is_set():
            node = nodes[rng.randrange(len(nodes))]
            started = time.monotonic()
            result = client_request(node.host, node.port, "GET", f"/kv/{PROBE_KEY}", None,
                                    PROBE_TIMEOUT)
            latency = time.monotonic() - started
            self.report.probes += 1
            self.report.probe_max_latency = max(self.report.probe_max_latency, latency)
            if result.status != 200 or (result.payload or {}).get("value") != \
                    KNOWN_KEYS[PROBE_KEY]:
                with self.lock:
                    self.findings.append(f"a sonda não foi atendida pelo nó {node.node_id} "
                                         f"durante o fuzz: {result.outcome} {result.status} "
                                         f"{result.error or result.payload}")
            time.sleep(PROBE_INTERVAL)

    def _watch(self) -> None:
        """Confere termo e líder de todos os nós e mede a memória, a cada meio segundo."""
        while not self.done.is_set():
            for node, status in zip(self.cluster.nodes, self.cluster.statuses(timeout=2.0)):
                rss = resident_memory_kib(node.process.pid) if node.process else None
                if rss is not None:
                    self.report.rss_max[node.node_id] = max(
                        self.report.rss_max.get(node.node_id, 0), rss)
                if status is None:
                    with self.lock:
                        self.findings.append(f"o nó {node.node_id} não respondeu a /status "
                                             f"em 2 s durante o fuzz")
                elif status["term"] != self.term or status["leader_id"] != self.leader_id:
                    with self.lock:
                        self.findings.append(
                            f"eleição durante o fuzz: o nó {node.node_id} está no termo "
                            f"{status['term']} com líder {status['leader_id']} (antes: "
                            f"termo {self.term}, líder {self.leader_id})")
                    self.term = max(self.term, status["term"])
                    self.leader_id = status["leader_id"]
            self.cluster.check_processes()
            time.sleep(0.5)

    # ---- conferência final -------------------------------------------------

    def _final_checks(self) -> None:
        report = self.report
        cluster = self.cluster
        if self.findings:
            report.problems.append(f"{len(self.findings)} resposta(s) ou atendimento(s) "
                                   f"inesperado(s), por exemplo:\n"
                                   + indent("\n".join(self.findings[:15])))
        after = self._stable_statuses()
        if after != self.before:
            report.problems.append("o estado do cluster mudou durante o fuzz:\n"
                                   f"antes:  {self.before}\ndepois: {after}")
        for node in cluster.nodes:
            growth = report.rss_max[node.node_id] - report.rss_before[node.node_id]
            if growth > RSS_GROWTH_LIMIT_KIB:
                report.problems.append(f"a memória do nó {node.node_id} cresceu "
                                       f"{growth // 1024} MiB durante o fuzz (limite "
                                       f"{RSS_GROWTH_LIMIT_KIB // 1024} MiB)")
        leader = cluster.agreed_leader()
        if leader is None:
            report.problems.append("sem líder depois do fuzz:\n" + cluster.describe())
        else:
            node = cluster.nodes[leader]
            for key, value in KNOWN_KEYS.items():
                result = client_request(node.host, node.port, "GET", f"/kv/{key}", None,
                                        5.0)
                if result.status != 200 or result.payload.get("value") != value:
                    report.problems.append(f"a chave {key} mudou ou sumiu: {result.status} "
                                           f"{result.payload}")
            for key in ("fuzz", "fuzz-lenta", "grande", "x"):
                result = client_request(node.host, node.port, "GET", f"/kv/{key}", None,
                                        5.0)
                if result.status != 404:
                    report.problems.append(f"a chave {key}, que só o fuzz usou, existe: "
                                           f"{result.status} {result.payload}")
            result = client_request(node.host, node.port, "PUT", "/kv/fuzz-depois",
                                    b'{"value": true}', 5.0)
            if result.status != 200:
                report.problems.append(f"uma escrita depois do fuzz falhou: {result.status} "
                                       f"{result.payload}")
        for position, node in enumerate(cluster.nodes):
            report.log_lines_added[node.node_id] = \
                len(node.log_text().splitlines()) - self.log_sizes[position]
        crash_lines = cluster.crash_lines()
        if crash_lines:
            report.problems.append("linhas de erro nos logs dos nós:\n"
                                   + indent("\n".join(crash_lines[:20])))


def run_fuzz(config: FuzzConfig, output: Optional[TextIO] = None) -> FuzzReport:
    """Roda o fuzz de `config` e devolve o relatório (já impresso em `output`)."""
    output = output or sys.stdout
    report = FuzzRun(config, output).run()
    print(report.format(), file=output, flush=True)
    return report


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/fuzz.py",
        description="Fuzz limitado contra todos os endpoints de um cluster real, com "
                    "clientes lentos e conexões paradas ao mesmo tempo.")
    parser.add_argument("--requests", type=int, default=2000,
                        help="quantidade de requisições do fuzz (padrão: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="semente dos pedidos (padrão: sorteada e impressa)")
    parser.add_argument("--nodes", type=int, default=3,
                        help="quantidade de nós (padrão: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="threads mandando pedidos do fuzz (padrão: %(default)s)")
    parser.add_argument("--slow-clients", type=int, default=6,
                        help="clientes que mandam um byte por vez (padrão: %(default)s)")
    parser.add_argument("--idle-connections", type=int, default=64,
                        help="conexões abertas que não mandam nada (padrão: %(default)s)")
    parser.add_argument("--stalled-connections", type=int,
                        default=MAX_CONNECTIONS + 32,
                        help="conexões que começam um pedido e nunca terminam, todas "
                             "contra um nó sorteado; 0 desliga (padrão: %(default)s, mais "
                             "que as vagas do nó)")
    parser.add_argument("--min-seconds", type=float, default=10.0,
                        help="duração mínima da fase de fuzz, em segundos; os clientes "
                             "lentos e as conexões paradas seguem até ela (padrão: "
                             "%(default)s)")
    parser.add_argument("--no-secret", action="store_true",
                        help="roda os nós sem --secret (RPCs sem assinatura)")
    parser.add_argument("--keep", action="store_true",
                        help="mantém a pasta com dados e logs dos nós mesmo sem falha")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    config = FuzzConfig(seed=seed, requests=args.requests, nodes=args.nodes,
                        workers=args.workers, slow_clients=args.slow_clients,
                        idle_connections=args.idle_connections,
                        stalled_connections=args.stalled_connections,
                        min_seconds=args.min_seconds, secret=not args.no_secret,
                        keep_folder=args.keep)
    report = run_fuzz(config)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
