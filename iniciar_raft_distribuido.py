#!/usr/bin/env python3
"""Inicia um cluster Raft local e abre um console para operá-lo e quebrá-lo de propósito.

O lançador executa N processos de `raft_distribuido.py` nesta máquina (o nó i escuta na porta
P+i), espera a eleição de um líder e mostra o log de cada nó com um prefixo que o identifica.
Depois abre um console em português para gravar, ler e apagar chaves, parar, matar e reiniciar
nós, particionar o cluster e desfazer a partição. Os comandos em inglês também são aceitos.

    python3 iniciar_raft_distribuido.py                      # 3 nós em 127.0.0.1:8000-8002
    python3 iniciar_raft_distribuido.py --nodes 5 --base-port 9000 --fresh
    printf 'put x 1\\nkill lider\\nget x\\n' | python3 iniciar_raft_distribuido.py

Quando a entrada padrão não é um terminal, o console lê um comando por linha e o código de saída
diz se todos deram certo (0) ou não (1). Digite `ajuda` no console para ver os comandos.

Nenhum nó fica para trás quando o lançador termina, seja por `sair`, Ctrl+C, SIGTERM ou SIGKILL.
Cada nó roda sob um supervisor pequeno (um `python3 -c`) cuja entrada padrão é um pipe cuja
única ponta de escrita fica com o lançador. Quando o lançador morre, por qualquer motivo, o
sistema operacional fecha essa ponta. O supervisor lê fim de arquivo, manda SIGTERM ao nó e,
se ele não sair em poucos segundos, SIGKILL.

O arquivo está dividido em seções:
  1. configurações;
  2. supervisor de cada nó;
  3. saída no terminal;
  4. cliente HTTP;
  5. processo de um nó;
  6. cluster;
  7. console;
  8. linha de comando e main().

Limitações conhecidas:
- Partições dependem da ajuda dos nós: cada nó, iniciado com --fault-injection, descarta o
  tráfego Raft de e para os pares bloqueados. Um nó reiniciado durante uma partição recebe a
  sua lista de bloqueio só depois de responder a GET /status. Até lá, quem mantém a partição
  são os nós do outro grupo, que descartam o tráfego de e para ele. Se eles também forem
  reiniciados nesse intervalo, os dois lados se falam por um instante.
- Se outro programa matar com SIGKILL só o supervisor de um nó, o nó fica órfão. O lançador
  nunca faz isso: para simular uma queda, ele mata o grupo de processos inteiro.
- Um gravar ou apagar cujo prazo (--command-timeout) acaba tem resultado incerto. O nó que
  recebeu o pedido continua tentando até o prazo dele. Assim ele pode aplicá-lo depois que o
  console já mostrou o erro, por exemplo logo depois de uma partição ser desfeita.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import errno
import http.client
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


# ---------------------------------------------------------------------------------------------
# 1. Configurações
# ---------------------------------------------------------------------------------------------

DEFAULT_NODES = 3
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8000
DEFAULT_DATA_DIR = "dados-raft"
NODE_SCRIPT = Path(__file__).resolve().with_name("raft_distribuido.py")

# Prazos em segundos. Os da eleição e dos comandos são folgados porque uma eleição leva algumas
# centenas de milissegundos, mas iniciar vários interpretadores Python numa máquina de laboratório
# lenta pode levar alguns segundos.
LEADER_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 10.0
NODE_READY_TIMEOUT_S = 10.0  # um nó (re)iniciado precisa responder a GET /status dentro deste prazo
STOP_TIMEOUT_S = 5.0  # espera após SIGTERM antes de recorrer ao SIGKILL
KILL_WAIT_S = 3.0  # espera pelo fim do processo depois de um SIGKILL
SUPERVISOR_GRACE_S = 3.0  # o supervisor órfão espera isto após o SIGTERM antes do SIGKILL
STATUS_REQUEST_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.1
RETRY_AFTER_MAX_S = 1.0  # limite para o Retry-After de uma resposta 503 entre duas tentativas
OUTPUT_DRAIN_TIMEOUT_S = 1.0  # tempo para ler o resto da saída de um nó que terminou
LOG_TAIL_LINES = 20

ROLE_NAMES = {"leader": "líder", "follower": "seguidor", "candidate": "candidato"}

# Cores ANSI das linhas dos nós, na ordem dos ids. A partir do 11º nó elas se repetem.
NODE_COLORS = ("36", "33", "35", "32", "34", "91", "96", "93", "95", "92")
ERROR_COLOR = "31"
WARNING_COLOR = "33"


# ---------------------------------------------------------------------------------------------
# 2. Supervisor de cada nó
# ---------------------------------------------------------------------------------------------

# Executado como `python3 -c SUPERVISOR_CODE <prazo> <comando do nó...>`, num grupo de processos
# próprio. O lançador guarda a única ponta de escrita do pipe ligado à entrada padrão do
# supervisor e nunca escreve nela. Fim de arquivo nesse pipe significa que o lançador terminou,
# mesmo por SIGKILL, que não pode ser tratado. Nesse caso o supervisor encerra o nó.
SUPERVISOR_CODE = r"""
import os
import signal
import subprocess
import sys
import threading

grace_seconds = float(sys.argv[1])
node = None
pending_signals = []


def forward_signal(signum, frame):
    # Um sinal que chega antes de o nó existir é entregue logo depois que ele nascer.
    if node is None:
        pending_signals.append(signum)
    else:
        node.send_signal(signum)


for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, forward_signal)

node = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)
for signum in pending_signals:
    node.send_signal(signum)


def stop_node_when_launcher_dies():
    while True:
        try:
            chunk = os.read(0, 64)
        except OSError:
            chunk = b""
        if not chunk:
            break
    node.terminate()
    try:
        node.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        node.kill()


threading.Thread(target=stop_node_when_launcher_dies, daemon=True).start()
code = node.wait()
# Um nó morto por um sinal vira o código 128 + sinal, como no shell.
sys.exit(code if code >= 0 else 128 - code)
"""


# ---------------------------------------------------------------------------------------------
# 3. Saída no terminal
# ---------------------------------------------------------------------------------------------

def color_enabled(stream: TextIO, environ: dict[str, str]) -> bool:
    """Decide se a saída usa cores ANSI: só num terminal, e nunca com NO_COLOR ou TERM=dumb."""
    # Convenção de no-color.org: qualquer valor não vazio em NO_COLOR desliga as cores.
    if environ.get("NO_COLOR"):
        return False
    if environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Output:
    """Saída compartilhada entre o console e as threads que leem os logs dos nós.

    Cada linha é escrita inteira sob um lock, então linhas de nós diferentes não se misturam.
    Mensagens de erro vão para a saída de erro, e todo o resto vai para a saída padrão.
    """

    def __init__(self, out: TextIO, err: TextIO, color: bool):
        self._out = out
        self._err = err
        self._color = color
        self._lock = threading.Lock()
        self._broken = False
        self.show_logs = True

    def _paint(self, text: str, color: str | None) -> str:
        if not self._color or color is None:
            return text
        return f"\033[{color}m{text}\033[0m"

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                stream.write(text + "\n")
                stream.flush()
            except (BrokenPipeError, ValueError):
                # Quem lia a saída foi embora (por exemplo, `| head`), e o lançador segue sem ela.
                self._broken = True

    def info(self, text: str) -> None:
        self._write(self._out, text)

    def warning(self, text: str) -> None:
        self._write(self._out, self._paint(f"aviso: {text}", WARNING_COLOR))

    def error(self, text: str) -> None:
        self._write(self._err, self._paint(f"erro: {text}", ERROR_COLOR))

    def node_line(self, node_id: int, text: str) -> None:
        if self.show_logs:
            color = NODE_COLORS[node_id % len(NODE_COLORS)]
            self._write(self._out, self._paint(f"nó {node_id} | {text}", color))


# ---------------------------------------------------------------------------------------------
# 4. Cliente HTTP
# ---------------------------------------------------------------------------------------------

class RequestFailed(Exception):
    """Falha ao falar com um nó: conexão recusada, tempo esgotado ou resposta ilegível."""


@dataclass
class Response:
    status: int
    body: object  # o JSON decodificado, ou None quando o corpo veio vazio
    retry_after: float | None

    def error_message(self) -> str:
        """Devolve a mensagem de erro do nó, ou uma genérica quando o corpo não traz nenhuma."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), str):
            return self.body["error"]
        return f"HTTP {self.status} sem mensagem de erro"


def http_request(base_url: str, method: str, path: str, body: object = None,
                 timeout: float = STATUS_REQUEST_TIMEOUT_S) -> Response:
    """Envia uma requisição JSON a um nó e devolve a resposta decodificada.

    Levanta RequestFailed quando não há resposta HTTP completa dentro de `timeout` segundos
    ou quando o corpo não é JSON.
    """
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        retry_header = response.getheader("Retry-After")
    except ConnectionRefusedError as exc:
        raise RequestFailed(f"conexão recusada em {base_url}") from exc
    except TimeoutError as exc:
        raise RequestFailed(f"sem resposta de {base_url} em {timeout:.1f} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise RequestFailed(f"falha ao falar com {base_url}: {exc!r}") from exc
    finally:
        connection.close()

    try:
        decoded = json.loads(raw) if raw else None
    except ValueError as exc:
        raise RequestFailed(f"resposta de {base_url} não é JSON: {raw[:80]!r}") from exc

    retry_after = None
    if retry_header is not None:
        try:
            retry_after = float(retry_header)
        except ValueError:
            retry_after = None
    return Response(response.status, decoded, retry_after)


def node_url(host: str, port: int) -> str:
    """Monta a URL pela qual os outros nós e o lançador alcançam um nó que escuta em host:port."""
    # Um nó que escuta em todas as interfaces é alcançado pelo loopback desta máquina.
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


# ---------------------------------------------------------------------------------------------
# 5. Processo de um nó
# ---------------------------------------------------------------------------------------------

def describe_exit(code: int) -> str:
    """Descreve em palavras o código de saída de um supervisor."""
    if code < 0:
        return f"morto pelo sinal {signal_name(-code)}"
    if code > 128 and code - 128 < signal.NSIG:
        return f"saiu com código {code} (o nó recebeu o sinal {signal_name(code - 128)})"
    return f"saiu com código {code}"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class NodeProcess:
    """Um nó do cluster local: seu supervisor, o processo do nó e as últimas linhas do seu log.

    Todas as chamadas a poll() e os envios de sinal acontecem sob `_lock`. Assim o lançador nunca
    sinaliza um PID que já colheu e que o sistema pode ter dado a outro processo.
    """

    def __init__(self, node_id: int, url: str, command: list[str], output: Output):
        self.node_id = node_id
        self.url = url
        self.command = command
        self._output = output
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._stop_requested = False
        # Só depois que o nó respondeu pela primeira vez um término inesperado vira aviso. Antes
        # disso quem relata a falha é quem o iniciou, com mais detalhes.
        self._ready = False
        self._tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)

    def start(self) -> int:
        """Inicia o supervisor e o nó e devolve o PID do supervisor, que também é o PGID."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                raise RuntimeError(f"o nó {self.node_id} já está rodando")
            self._tail.clear()
            self._stop_requested = False
            self._ready = False
            environment = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
            # O grupo de processos próprio impede que o Ctrl+C do terminal chegue direto aos nós
            # (quem decide a ordem de parada é o lançador) e permite matar supervisor e nó de uma
            # vez com killpg. close_fds (o padrão) impede que um supervisor herde o pipe de outro.
            process = subprocess.Popen(
                [sys.executable, "-c", SUPERVISOR_CODE, str(SUPERVISOR_GRACE_S), *self.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )
            self._process = process
            self._reader = threading.Thread(target=self._read_output, args=(process,),
                                            name=f"saida-no-{self.node_id}", daemon=True)
            self._reader.start()
            return process.pid

    def _read_output(self, process: subprocess.Popen) -> None:
        """Mostra cada linha do nó com prefixo e guarda as últimas.

        Avisa quando o nó termina sem que o lançador tenha pedido.
        """
        for raw in process.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._lock:
                self._tail.append(text)
            self._output.node_line(self.node_id, text)
        process.stdout.close()

        # O fim da saída quase sempre quer dizer que o supervisor terminou. Falta colher o código.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            with self._lock:
                code = process.poll()
                announce = self._ready and not self._stop_requested and self._process is process
                last_lines = list(self._tail)[-3:]
            if code is not None:
                break
            if time.monotonic() >= deadline:
                return
            time.sleep(POLL_INTERVAL_S)
        if process.stdin is not None:
            process.stdin.close()
        if announce:
            lines_text = "\n".join(f"    {line}" for line in last_lines) or "    (nenhuma)"
            self._output.warning(
                f"o nó {self.node_id} terminou sem que o lançador pedisse ({describe_exit(code)}).\n"
                f"  últimas linhas do nó:\n{lines_text}\n"
                f"  use 'iniciar {self.node_id}' para iniciá-lo de novo")

    def mark_ready(self) -> None:
        with self._lock:
            self._ready = True

    def is_running(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def pid(self) -> int | None:
        with self._lock:
            return None if self._process is None else self._process.pid

    def exit_code(self) -> int | None:
        with self._lock:
            return None if self._process is None else self._process.poll()

    def request_stop(self) -> bool:
        """Pede um encerramento limpo: SIGTERM ao supervisor, que o repassa ao nó."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                return False
            self._stop_requested = True
            self._process.send_signal(signal.SIGTERM)
            return True

    def kill(self) -> bool:
        """Mata supervisor e nó com SIGKILL de uma vez, pelo grupo de processos que o lançador criou."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                return False
            self._stop_requested = True
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return True

    def wait_exit(self, timeout: float) -> int | None:
        """Espera o supervisor terminar e devolve seu código, ou None se o prazo acabar antes."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None or self._process is None:
                return code
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL_S / 2)

    def drain_output(self) -> None:
        """Espera a thread de leitura consumir o que o nó escreveu antes de terminar."""
        reader = self._reader
        if reader is not None:
            reader.join(OUTPUT_DRAIN_TIMEOUT_S)

    def last_lines(self, count: int) -> list[str]:
        with self._lock:
            return list(self._tail)[-count:]

    def process_label(self) -> str:
        """Resume o processo para a tabela de estado: rodando, parado, morto ou nunca iniciado."""
        with self._lock:
            if self._process is None:
                return "não iniciado"
            code = self._process.poll()
            if code is None:
                return f"rodando (pid {self._process.pid})"
        if code == 0:
            return "parado"
        if code == -signal.SIGKILL:
            return "morto (SIGKILL)"
        return f"parado ({describe_exit(code)})"


# ---------------------------------------------------------------------------------------------
# 6. Cluster
# ---------------------------------------------------------------------------------------------

class ClusterError(Exception):
    """Falha que impede o cluster de iniciar, com a explicação completa para o usuário."""


@dataclass
class ClusterConfig:
    nodes: int
    host: str
    base_port: int
    data_dir: Path
    node_script: Path
    node_options: list[str]  # opções repassadas a todos os nós, como --heartbeat-interval
    leader_timeout: float
    command_timeout: float


@dataclass
class ClientResult:
    """Resultado de um gravar, ler ou apagar: a resposta final, ou o motivo de não haver uma."""
    node_index: int | None
    response: Response | None
    problem: str | None


def find_leader(statuses: dict[int, dict], cluster_size: int,
                partition: list[list[int]] | None = None) -> tuple[dict | None, list[dict]]:
    """Separa o líder confirmado dos nós que só se acham líderes.

    `statuses` vem indexado pelo número do nó. Um líder está confirmado quando a maioria do
    cluster (ele incluído) está no mesmo termo e o aponta como líder. Com uma partição, só contam
    os nós do grupo dele: logo depois de particionar, os nós do outro lado ainda apontam para o
    líder antigo, mas já não recebem mensagens dele. Um líder isolado continua se dizendo líder,
    sem essa maioria, e não consegue confirmar escritas. Devolve (confirmado ou None, os outros).
    """
    majority = cluster_size // 2 + 1
    leaders = [status for status in statuses.values() if status.get("state") == "leader"]
    leaders.sort(key=lambda status: status.get("term", -1), reverse=True)
    confirmed = None
    for candidate in leaders:
        reachable = set(statuses)
        if partition is not None:
            candidate_index = next(index for index, status in statuses.items() if status is candidate)
            reachable = next((set(group) for group in partition if candidate_index in group),
                             {candidate_index})
        supporters = 0
        for index, status in statuses.items():
            same_term = status.get("term") == candidate.get("term")
            follows = str(status.get("leader_id")) == str(candidate.get("id"))
            if status is candidate or (index in reachable and same_term and follows):
                supporters += 1
        if supporters >= majority:
            confirmed = candidate
            break
    others = [leader for leader in leaders if leader is not confirmed]
    return confirmed, others


def parse_partition(text: str, cluster_size: int) -> list[list[int]]:
    """Interpreta grupos como '0 1 | 2' e devolve [[0, 1], [2]].

    Levanta ValueError com a explicação quando falta um grupo, um nó aparece duas vezes ou fica
    de fora, ou um id não existe.
    """
    example = "particionar 0 1 | 2"
    groups: list[list[int]] = []
    for chunk in text.split("|"):
        group = []
        for token in chunk.replace(",", " ").split():
            if not token.isdigit() or int(token) >= cluster_size:
                raise ValueError(f"nó inválido: {token!r}; os nós vão de 0 a {cluster_size - 1}")
            group.append(int(token))
        if not group:
            raise ValueError(f"há um grupo vazio em {text.strip()!r}; exemplo: {example}")
        groups.append(group)
    if len(groups) < 2:
        raise ValueError(f"separe pelo menos dois grupos com '|'; exemplo: {example}")

    seen: set[int] = set()
    for group in groups:
        for node_id in group:
            if node_id in seen:
                raise ValueError(f"o nó {node_id} aparece em mais de um grupo")
            seen.add(node_id)
    missing = [node_id for node_id in range(cluster_size) if node_id not in seen]
    if missing:
        listed = ", ".join(str(node_id) for node_id in missing)
        raise ValueError(f"todo nó precisa estar em um grupo, e faltam: {listed}; exemplo: {example}")
    return groups


def blocked_urls(groups: list[list[int]], urls: list[str], node_id: int) -> list[str]:
    """Devolve as URLs que um nó deve bloquear: as de todos os nós fora do seu grupo."""
    own_group = next(group for group in groups if node_id in group)
    return [url for index, url in enumerate(urls) if index not in own_group]


class Cluster:
    """Os nós locais e as operações do console sobre eles."""

    def __init__(self, config: ClusterConfig, output: Output):
        self.config = config
        self.output = output
        self.partition: list[list[int]] | None = None
        # Sessão de cliente: o nó aplica uma vez só cada (client_id, sequence), então repetir um
        # gravar ou apagar cuja resposta se perdeu não o aplica de novo.
        self.client_id = f"lancador-{os.getpid()}-{secrets.token_hex(4)}"
        self._last_sequence = 0
        self.urls = [node_url(config.host, config.base_port + index) for index in range(config.nodes)]
        self.nodes = [NodeProcess(index, self.urls[index], self._node_command(index), output)
                      for index in range(config.nodes)]

    def _node_command(self, index: int) -> list[str]:
        peers = [url for other, url in enumerate(self.urls) if other != index]
        command = [sys.executable, str(self.config.node_script),
                   "--id", str(index),
                   "--host", self.config.host,
                   "--port", str(self.config.base_port + index)]
        if peers:
            command += ["--peers", *peers]
        command += ["--data-dir", str(self.config.data_dir / f"no-{index}"), "--fault-injection"]
        return command + self.config.node_options

    # --- Início e parada -----------------------------------------------------------------------

    def start_all(self) -> dict:
        """Inicia todos os nós, espera um líder confirmado e devolve o estado desse líder.

        Levanta ClusterError quando um nó termina durante a inicialização ou quando o prazo da
        eleição acaba.
        """
        for node in self.nodes:
            pid = node.start()
            self.output.info(f"nó {node.node_id} iniciado em {node.url} (supervisor pid {pid})")
        self.output.info(f"esperando a eleição de um líder (prazo: {self.config.leader_timeout:g} s)...")

        deadline = time.monotonic() + self.config.leader_timeout
        while True:
            for node in self.nodes:
                if not node.is_running():
                    raise ClusterError(self.describe_start_failure(node))
            statuses, problems = self.fetch_statuses()
            for index in statuses:
                self.nodes[index].mark_ready()
            leader, _ = find_leader(statuses, len(self.nodes), self.partition)
            if leader is not None:
                return leader
            if time.monotonic() >= deadline:
                raise ClusterError(self.describe_missing_leader(statuses, problems))
            time.sleep(POLL_INTERVAL_S)

    def describe_start_failure(self, node: NodeProcess) -> str:
        """Explica por que um nó terminou ao iniciar: o que ele escreveu por último e o que fazer."""
        code = node.wait_exit(KILL_WAIT_S)
        node.drain_output()
        port = self.config.base_port + node.node_id
        exit_text = "terminou" if code is None else describe_exit(code)
        lines = node.last_lines(5)
        lines_text = "\n".join(f"    {line}" for line in lines) or "    (o nó não escreveu nada)"
        if port_in_use(self.config.host, port):
            advice = (f"a porta {port} já está em uso por outro programa. Feche esse programa "
                      f"(veja qual é com `ss -ltnp | grep :{port}`) ou escolha outras portas "
                      f"com --base-port.")
        else:
            advice = ("leia a última saída acima. Para repetir o erro sozinho, execute o nó com "
                      f"o mesmo comando:\n    {shlex.join(node.command)}")
        return (f"o nó {node.node_id} ({node.url}) terminou durante a inicialização ({exit_text}).\n"
                f"  última saída do nó {node.node_id}:\n{lines_text}\n"
                f"  o que fazer: {advice}")

    def describe_missing_leader(self, statuses: dict[int, dict], problems: dict[int, str]) -> str:
        lines = [f"nenhum líder eleito em {self.config.leader_timeout:g} s."]
        for node in self.nodes:
            if node.node_id in statuses:
                status = statuses[node.node_id]
                role = ROLE_NAMES.get(status.get("state"), str(status.get("state")))
                summary = f"{role} no termo {status.get('term')}"
            else:
                summary = problems.get(node.node_id, "sem resposta")
            last = node.last_lines(1)
            last_text = last[0] if last else "(nenhuma)"
            lines.append(f"  nó {node.node_id}: {summary}; última linha: {last_text}")
        lines.append("  o que fazer: confira nas linhas acima se os nós trocam mensagens (mesmo "
                     "--host para todos, nenhum firewall no caminho). Se a máquina estiver "
                     "lenta, aumente --leader-timeout.")
        return "\n".join(lines)

    def start_node(self, index: int) -> bool:
        """Inicia um nó parado, espera que responda e reaplica a partição em vigor."""
        node = self.nodes[index]
        if node.is_running():
            self.output.error(f"o nó {index} já está rodando; para reiniciá-lo use 'reiniciar {index}'")
            return False
        pid = node.start()
        deadline = time.monotonic() + NODE_READY_TIMEOUT_S
        while True:
            if not node.is_running():
                self.output.error(self.describe_start_failure(node))
                return False
            try:
                http_request(node.url, "GET", "/status")
                break
            except RequestFailed as exc:
                if time.monotonic() >= deadline:
                    self.output.error(f"o nó {index} não respondeu em {NODE_READY_TIMEOUT_S:g} s "
                                      f"({exc}); ele continua rodando, veja o log acima")
                    return False
            time.sleep(POLL_INTERVAL_S)
        node.mark_ready()
        self.output.info(f"nó {index} iniciado em {node.url} (supervisor pid {pid})")
        if self.partition is not None:
            return self._send_partition(index)
        return True

    def stop_node(self, index: int, crash: bool) -> bool:
        """Para um nó: com SIGTERM (encerramento limpo) ou, se `crash`, com SIGKILL."""
        node = self.nodes[index]
        if not node.is_running():
            self.output.error(f"o nó {index} não está rodando ({node.process_label()})")
            return False
        if crash:
            node.kill()
            code = node.wait_exit(KILL_WAIT_S)
            if code is None:
                self.output.error(f"o nó {index} não terminou {KILL_WAIT_S:g} s depois do SIGKILL")
                return False
            self.output.info(f"nó {index} morto com SIGKILL: uma queda sem aviso, sem encerramento limpo")
            return True

        node.request_stop()
        code = node.wait_exit(STOP_TIMEOUT_S)
        if code is None:
            self.output.warning(f"o nó {index} não parou em {STOP_TIMEOUT_S:g} s após o SIGTERM; "
                                f"usando SIGKILL")
            node.kill()
            code = node.wait_exit(KILL_WAIT_S)
            if code is None:
                self.output.error(f"o nó {index} não terminou nem com SIGKILL")
                return False
        self.output.info(f"nó {index} parado ({describe_exit(code)})")
        return True

    def shutdown(self) -> None:
        """Para todos os nós em paralelo: SIGTERM, espera e SIGKILL para quem não saiu."""
        running = [node for node in self.nodes if node.is_running()]
        if not running:
            return
        self.output.info(f"encerrando: parando {len(running)} nó(s)...")
        for node in running:
            node.request_stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in running:
            if node.wait_exit(max(0.0, deadline - time.monotonic())) is None:
                self.output.warning(f"o nó {node.node_id} não parou em {STOP_TIMEOUT_S:g} s; usando SIGKILL")
                node.kill()
                node.wait_exit(KILL_WAIT_S)
        for node in running:
            node.drain_output()
        still_running = [str(node.node_id) for node in running if node.is_running()]
        if still_running:
            self.output.error(f"não consegui parar os nós {', '.join(still_running)}")
        else:
            self.output.info("todos os nós foram parados")

    # --- Consultas -----------------------------------------------------------------------------

    def fetch_statuses(self) -> tuple[dict[int, dict], dict[int, str]]:
        """Pede GET /status a todos os nós rodando, em paralelo.

        Devolve (estado por nó, problema por nó que não respondeu).
        """
        statuses: dict[int, dict] = {}
        problems: dict[int, str] = {}
        lock = threading.Lock()

        def fetch(node: NodeProcess) -> None:
            try:
                response = http_request(node.url, "GET", "/status")
                if response.status == 200 and isinstance(response.body, dict):
                    result, problem = response.body, None
                else:
                    result, problem = None, f"GET /status respondeu {response.status}"
            except RequestFailed as exc:
                result, problem = None, str(exc)
            with lock:
                if result is not None:
                    statuses[node.node_id] = result
                else:
                    problems[node.node_id] = problem

        threads = []
        for node in self.nodes:
            if node.is_running():
                thread = threading.Thread(target=fetch, args=(node,), daemon=True)
                thread.start()
                threads.append(thread)
            else:
                problems[node.node_id] = node.process_label()
        deadline = time.monotonic() + STATUS_REQUEST_TIMEOUT_S * 2
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with lock:
            return dict(statuses), dict(problems)

    def current_leader(self) -> dict | None:
        statuses, _ = self.fetch_statuses()
        leader, _ = find_leader(statuses, len(self.nodes), self.partition)
        return leader

    def index_of(self, node_id: object) -> int | None:
        """Converte o id informado por um nó ("2") no índice do lançador (2)."""
        text = str(node_id)
        if text.isdigit() and int(text) < len(self.nodes):
            return int(text)
        return None

    def wait_for_leader(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            leader = self.current_leader()
            if leader is not None or time.monotonic() >= deadline:
                return leader
            time.sleep(POLL_INTERVAL_S)

    def wait_for_sync(self, timeout: float) -> tuple[bool, str]:
        """Espera até todos os nós rodando terem o mesmo log que o líder, todo confirmado e aplicado.

        Devolve (sucesso, descrição). Nós parados ficam de fora da comparação.
        """
        deadline = time.monotonic() + timeout
        while True:
            statuses, problems = self.fetch_statuses()
            leader, _ = find_leader(statuses, len(self.nodes), self.partition)
            running = [node.node_id for node in self.nodes if node.is_running()]
            if leader is None:
                detail = "nenhum líder confirmado pela maioria"
            else:
                target = (leader.get("last_log_index"), leader.get("last_log_term"))
                lagging = []
                for index in running:
                    status = statuses.get(index)
                    if status is None:
                        lagging.append(f"nó {index} ({problems.get(index, 'sem resposta')})")
                        continue
                    same_log = (status.get("last_log_index"), status.get("last_log_term")) == target
                    all_applied = (status.get("commit_index") == target[0]
                                   and status.get("last_applied") == target[0])
                    if not (same_log and all_applied):
                        lagging.append(f"nó {index} (commit {status.get('commit_index')}, "
                                       f"aplicado {status.get('last_applied')}, último índice "
                                       f"{status.get('last_log_index')})")
                if not lagging:
                    nodes_text = ", ".join(str(index) for index in running)
                    return True, (f"nós {nodes_text} sincronizados: último índice {target[0]} "
                                  f"(termo {target[1]}), todo confirmado e aplicado")
                detail = (f"líder nó {leader.get('id')} no índice {target[0]}; atrasados: "
                          + "; ".join(lagging))
            if time.monotonic() >= deadline:
                return False, detail
            time.sleep(POLL_INTERVAL_S)

    # --- Partições -----------------------------------------------------------------------------

    def apply_partition(self, groups: list[list[int]] | None) -> bool:
        """Aplica (ou, com None, desfaz) uma partição em todos os nós rodando."""
        self.partition = groups
        ok = True
        for node in self.nodes:
            if node.is_running():
                ok = self._send_partition(node.node_id) and ok
            elif groups is not None:
                self.output.info(f"o nó {node.node_id} está parado; a partição será aplicada "
                                 f"quando ele for iniciado")
        return ok

    def _send_partition(self, index: int) -> bool:
        node = self.nodes[index]
        blocked = [] if self.partition is None else blocked_urls(self.partition, self.urls, index)
        try:
            response = http_request(node.url, "POST", "/admin/partition", {"blocked": blocked})
        except RequestFailed as exc:
            self.output.error(f"não consegui enviar a partição ao nó {index}: {exc}")
            return False
        if response.status == 403:
            self.output.error(f"o nó {index} recusou a partição (403: {response.error_message()}); "
                              f"ele precisa ser iniciado com --fault-injection")
            return False
        if response.status != 200:
            self.output.error(f"o nó {index} respondeu {response.status} ao pedido de partição: "
                              f"{response.error_message()}")
            return False
        return True

    # --- Chaves --------------------------------------------------------------------------------

    def pick_client_target(self) -> int | None:
        """Escolhe a quem mandar um pedido de cliente: o líder confirmado, se houver.

        Sem líder confirmado, escolhe o nó que se diz líder no maior termo e, sem nenhum, o
        primeiro nó que respondeu, que repassa o pedido ao líder quando houver um.
        """
        statuses, _ = self.fetch_statuses()
        leader, others = find_leader(statuses, len(self.nodes), self.partition)
        for choice in [leader, *others]:
            if choice is not None and self.index_of(choice.get("id")) is not None:
                return self.index_of(choice.get("id"))
        if statuses:
            return min(statuses)
        return None

    def client_request(self, method: str, key: str, body: object, target: int | None) -> ClientResult:
        """Envia um pedido de cliente e tenta de novo enquanto não houver líder, até o prazo.

        Repete após 503 (sem líder ou sem quórum) e após falhas de rede. Gravar e apagar levam a
        sessão de cliente, então uma repetição não os aplica duas vezes. Com `target` fixo, o
        pedido vai sempre para aquele nó. Sem ele, cada tentativa escolhe o destino de novo, e
        assim um pedido sobrevive à queda do líder.
        """
        timeout = self.config.command_timeout
        deadline = time.monotonic() + timeout
        path = "/kv/" + urllib.parse.quote(key, safe="")
        if method != "GET":
            # Todas as tentativas deste comando levam a mesma sequência.
            self._last_sequence += 1
            body = dict(body or {}, client_id=self.client_id, sequence=self._last_sequence)
        last_problem = "nenhuma tentativa"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ClientResult(None, None, f"tempo esgotado ({timeout:g} s); última tentativa: "
                                                f"{last_problem}")
            index = target if target is not None else self.pick_client_target()
            if index is None:
                last_problem = "nenhum nó respondeu a GET /status"
                time.sleep(min(POLL_INTERVAL_S, remaining))
                continue
            node = self.nodes[index]
            if not node.is_running():
                if target is not None:
                    return ClientResult(index, None, f"o nó {index} não está rodando "
                                                     f"({node.process_label()})")
                time.sleep(min(POLL_INTERVAL_S, remaining))
                continue
            try:
                response = http_request(node.url, method, path, body, timeout=remaining)
            except RequestFailed as exc:
                last_problem = f"nó {index}: {exc}"
                time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
                continue
            if response.status == 503:
                last_problem = f"nó {index} respondeu 503: {response.error_message()}"
                pause = min(response.retry_after or POLL_INTERVAL_S, RETRY_AFTER_MAX_S)
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                continue
            return ClientResult(index, response, None)


def port_in_use(host: str, port: int) -> bool:
    """Diz se outro programa escuta em host:port, tentando abrir a porta por um instante."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR ignora conexões antigas em TIME_WAIT, que não impedem o nó de escutar.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


# ---------------------------------------------------------------------------------------------
# 7. Console
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    name: str  # nome em português, mostrado na ajuda
    aliases: tuple[str, ...]  # sinônimos, incluindo o nome em inglês
    usage: str
    summary: str
    handler: str  # nome do método de Console que executa o comando


COMMANDS = (
    Command("estado", ("status", "st"), "estado",
            "tabela com papel, termo, líder, commit e último índice de cada nó", "do_status"),
    Command("lider", ("leader",), "lider",
            "mostra quem é o líder confirmado pela maioria", "do_leader"),
    Command("gravar", ("put", "set", "escrever"), "gravar <chave> <valor> [@nó]",
            "grava um valor: JSON (42, \"texto\", [1, 2]) ou, se não for JSON, o texto como está",
            "do_put"),
    Command("ler", ("get",), "ler <chave> [@nó]", "lê uma chave", "do_get"),
    Command("apagar", ("delete", "del", "remover"), "apagar <chave> [@nó]", "apaga uma chave",
            "do_delete"),
    Command("parar", ("stop",), "parar <nó>...",
            "para o nó com SIGTERM: um encerramento limpo", "do_stop"),
    Command("matar", ("kill", "crash", "derrubar"), "matar <nó>...",
            "mata o nó com SIGKILL: simula uma queda", "do_kill"),
    Command("iniciar", ("start", "subir"), "iniciar [<nó>...]",
            "inicia nós parados; sem argumento, todos os parados", "do_start"),
    Command("reiniciar", ("restart",), "reiniciar <nó>...",
            "para o nó com SIGTERM e o inicia de novo", "do_restart"),
    Command("particionar", ("partition", "particao"), "particionar <grupo> | <grupo> [| ...]",
            "divide o cluster em grupos que não se comunicam, ex.: particionar 0 1 | 2",
            "do_partition"),
    Command("isolar", ("isolate",), "isolar <nó>",
            "isola um nó do resto: o mesmo que particionar <nó> | <os outros>", "do_isolate"),
    Command("curar", ("heal", "reunir"), "curar", "desfaz a partição", "do_heal"),
    Command("esperar", ("wait", "aguardar"), "esperar [lider | sincronia | <segundos>] [prazo]",
            "espera um líder (padrão), todos os nós com o mesmo log, ou um tempo fixo", "do_wait"),
    Command("logs", (), "logs [sim | nao]", "liga ou desliga a exibição dos logs dos nós",
            "do_logs"),
    Command("ajuda", ("help", "?", "h"), "ajuda", "mostra esta ajuda", "do_help"),
    Command("sair", ("quit", "exit", "q"), "sair", "para todos os nós e sai (também: Ctrl+D)",
            "do_quit"),
)

NODE_SELECTOR_HELP = ("um nó é um número (0, 1, ...), 'lider' para o líder atual ou 'todos'; "
                      "@nó em gravar/ler/apagar escolhe o nó que recebe o pedido, ex.: ler x @2")


def normalize_word(word: str) -> str:
    """Passa para minúsculas e tira acentos, para que 'Líder' e 'lider' sejam o mesmo comando."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def parse_value(text: str) -> object:
    """Interpreta o valor de gravar: JSON quando for JSON válido, senão o texto como está."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_target(text: str) -> tuple[str, str | None]:
    """Separa um '@nó' no fim do texto: 'x 1 @2' vira ('x 1', '2')."""
    parts = text.rsplit(None, 1)
    if len(parts) == 2 and parts[1].startswith("@") and len(parts[1]) > 1:
        return parts[0], parts[1][1:]
    if len(parts) == 1 and parts[0].startswith("@"):
        return "", parts[0][1:]
    return text, None


class UsageError(Exception):
    """Argumento inválido num comando do console; a mensagem diz o que era esperado."""


class Console:
    """Lê comandos, um por linha, e os executa no cluster."""

    def __init__(self, cluster: Cluster | None, output: Output):
        self.cluster = cluster
        self.output = output
        self.quit_requested = False
        self._by_word: dict[str, Command] = {}
        for command in COMMANDS:
            for word in (command.name, *command.aliases):
                self._by_word[normalize_word(word)] = command

    def run(self, stream: TextIO, interactive: bool) -> bool:
        """Executa comandos até 'sair' ou o fim da entrada e devolve se todos deram certo."""
        all_ok = True
        if interactive:
            try:
                import readline  # noqa: F401  (só importar já dá histórico e edição a input())
            except ImportError:
                pass
        while not self.quit_requested:
            if interactive:
                try:
                    line = input("raft> ")
                except EOFError:
                    self.output.info("")
                    break
            else:
                line = stream.readline()
                if line == "":
                    break
                line = line.rstrip("\n")
                if line.strip():
                    # Ecoa o comando para que a transcrição de um roteiro mostre o que foi pedido.
                    self.output.info(f"raft> {line.strip()}")
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if not self.execute(text):
                all_ok = False
        return all_ok

    def execute(self, text: str) -> bool:
        """Executa uma linha de comando e devolve se deu certo. Um erro vira mensagem, não exceção."""
        word, _, rest = text.partition(" ")
        command = self._by_word.get(normalize_word(word))
        if command is None:
            self.output.error(self._unknown_command_message(word))
            return False
        try:
            return getattr(self, command.handler)(rest.strip())
        except UsageError as exc:
            self.output.error(f"{exc}\n  uso: {command.usage}")
            return False

    def _unknown_command_message(self, word: str) -> str:
        names = ", ".join(command.name for command in COMMANDS)
        message = f"comando desconhecido: {word!r}. Comandos: {names}"
        close = difflib.get_close_matches(normalize_word(word), list(self._by_word), n=1, cutoff=0.6)
        if close:
            message = f"comando desconhecido: {word!r}; você quis dizer '{self._by_word[close[0]].name}'?"
        return message + " (digite 'ajuda' para ver todos)"

    # --- Argumentos ----------------------------------------------------------------------------

    def _require_cluster(self) -> Cluster:
        if self.cluster is None:
            raise UsageError("este console não está ligado a um cluster")
        return self.cluster

    def _resolve_nodes(self, text: str, allow_all: bool) -> list[int]:
        """Converte '0 2', 'lider' ou 'todos' em índices de nós."""
        cluster = self._require_cluster()
        tokens = text.replace(",", " ").split()
        if not tokens:
            raise UsageError(f"informe o nó; {NODE_SELECTOR_HELP}")
        indexes: list[int] = []
        for token in tokens:
            word = normalize_word(token)
            if word in ("todos", "all"):
                if not allow_all:
                    raise UsageError("este comando recebe um nó só, não 'todos'")
                indexes.extend(range(len(cluster.nodes)))
            elif word in ("lider", "leader"):
                leader = cluster.current_leader()
                if leader is None or cluster.index_of(leader.get("id")) is None:
                    raise UsageError("nenhum líder confirmado pela maioria agora; veja 'estado'")
                indexes.append(cluster.index_of(leader.get("id")))
            elif token.isdigit() and int(token) < len(cluster.nodes):
                indexes.append(int(token))
            else:
                raise UsageError(f"nó inválido: {token!r}; esperado um número de 0 a "
                                 f"{len(cluster.nodes) - 1}, 'lider' ou 'todos'")
        return list(dict.fromkeys(indexes))

    def _resolve_target(self, selector: str | None) -> int | None:
        if selector is None:
            return None
        indexes = self._resolve_nodes(selector, allow_all=False)
        if len(indexes) != 1:
            raise UsageError("@nó escolhe um nó só")
        return indexes[0]

    # --- Comandos ------------------------------------------------------------------------------

    def do_help(self, rest: str) -> bool:
        width = max(len(command.usage) for command in COMMANDS)
        lines = ["comandos (os nomes em inglês entre parênteses também valem):"]
        for command in COMMANDS:
            aliases = f" ({', '.join(command.aliases)})" if command.aliases else ""
            lines.append(f"  {command.usage.ljust(width)}  {command.summary}{aliases}")
        lines.append(f"{NODE_SELECTOR_HELP}.")
        lines.append("linhas que começam com # são ignoradas; Ctrl+C para o cluster e sai.")
        self.output.info("\n".join(lines))
        return True

    def do_quit(self, rest: str) -> bool:
        self.quit_requested = True
        return True

    def do_logs(self, rest: str) -> bool:
        word = normalize_word(rest)
        if word == "":
            self.output.show_logs = not self.output.show_logs
        elif word in ("sim", "on", "ligar"):
            self.output.show_logs = True
        elif word in ("nao", "off", "desligar"):
            self.output.show_logs = False
        else:
            raise UsageError(f"valor inválido: {rest!r}; esperado 'sim' ou 'nao'")
        self.output.info("logs dos nós " + ("ligados" if self.output.show_logs else "desligados"))
        return True

    def do_status(self, rest: str) -> bool:
        cluster = self._require_cluster()
        statuses, problems = cluster.fetch_statuses()
        headers = ["nó", "processo", "papel", "termo", "líder", "commit", "último índice",
                   "aplicado"]
        if cluster.partition is not None:
            headers.append("grupo")
        rows = []
        for node in cluster.nodes:
            status = statuses.get(node.node_id)
            row = [str(node.node_id), node.process_label()]
            if status is None:
                row += ["sem resposta" if node.is_running() else "-", "-", "-", "-", "-", "-"]
            else:
                leader_id = status.get("leader_id")
                row += [ROLE_NAMES.get(status.get("state"), str(status.get("state"))),
                        str(status.get("term")),
                        "-" if leader_id is None else str(leader_id),
                        str(status.get("commit_index")),
                        str(status.get("last_log_index")),
                        str(status.get("last_applied"))]
            if cluster.partition is not None:
                group = next(number for number, members in enumerate(cluster.partition)
                             if node.node_id in members)
                row.append(chr(ord("A") + group))
            rows.append(row)

        widths = [max(len(header), *(len(row[column]) for row in rows))
                  for column, header in enumerate(headers)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths)).rstrip()]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        for index, problem in sorted(problems.items()):
            if cluster.nodes[index].is_running():
                lines.append(f"nó {index}: {problem}")
        self.output.info("\n".join(lines))
        self._report_leader(statuses)
        return True

    def _report_leader(self, statuses: dict[int, dict]) -> dict | None:
        cluster = self._require_cluster()
        leader, others = find_leader(statuses, len(cluster.nodes), cluster.partition)
        if leader is None:
            self.output.info("líder: nenhum confirmado pela maioria")
        else:
            self.output.info(f"líder: nó {leader.get('id')} ({leader.get('url')}, "
                             f"termo {leader.get('term')})")
        for stale in others:
            self.output.info(f"  o nó {stale.get('id')} ainda se diz líder no termo "
                             f"{stale.get('term')}, mas a maioria não o segue: ele não "
                             f"consegue confirmar escritas")
        return leader

    def do_leader(self, rest: str) -> bool:
        if rest:
            raise UsageError(f"'lider' não recebe argumentos, e veio {rest!r}")
        statuses, _ = self._require_cluster().fetch_statuses()
        return self._report_leader(statuses) is not None

    def do_put(self, rest: str) -> bool:
        rest, selector = split_target(rest)
        key, _, value_text = rest.partition(" ")
        value_text = value_text.strip()
        if not key or not value_text:
            raise UsageError("faltam a chave e o valor")
        target = self._resolve_target(selector)
        value = parse_value(value_text)
        result = self._require_cluster().client_request("PUT", key, {"value": value}, target)
        if not self._check_result(result, key):
            return False
        body = result.response.body if isinstance(result.response.body, dict) else {}
        self.output.info(f"ok: {key} = {json.dumps(value, ensure_ascii=False)} (índice "
                         f"{body.get('index')}, termo {body.get('term')}, pedido ao nó "
                         f"{result.node_index})")
        return True

    def do_get(self, rest: str) -> bool:
        rest, selector = split_target(rest)
        key = self._single_key(rest)
        target = self._resolve_target(selector)
        result = self._require_cluster().client_request("GET", key, None, target)
        if not self._check_result(result, key):
            return False
        body = result.response.body if isinstance(result.response.body, dict) else {}
        value = json.dumps(body.get("value"), ensure_ascii=False)
        self.output.info(f"{key} = {value} (lido pelo nó {result.node_index})")
        return True

    def do_delete(self, rest: str) -> bool:
        rest, selector = split_target(rest)
        key = self._single_key(rest)
        target = self._resolve_target(selector)
        result = self._require_cluster().client_request("DELETE", key, None, target)
        if not self._check_result(result, key):
            return False
        self.output.info(f"ok: chave {key!r} apagada (pedido ao nó {result.node_index})")
        return True

    def _single_key(self, text: str) -> str:
        parts = text.split()
        if len(parts) != 1:
            raise UsageError("informe uma chave (sem espaços)")
        return parts[0]

    def _check_result(self, result: ClientResult, key: str) -> bool:
        if result.response is None:
            self.output.error(f"{result.problem}. Veja 'estado': o cluster tem maioria e líder?")
            return False
        response = result.response
        if response.status == 404:
            self.output.error(f"a chave {key!r} não existe (nó {result.node_index}: "
                              f"{response.error_message()})")
            return False
        if response.status != 200:
            self.output.error(f"o nó {result.node_index} respondeu {response.status}: "
                              f"{response.error_message()}")
            return False
        return True

    def do_stop(self, rest: str) -> bool:
        cluster = self._require_cluster()
        indexes = self._resolve_nodes(rest, allow_all=True)
        return all([cluster.stop_node(index, crash=False) for index in indexes])

    def do_kill(self, rest: str) -> bool:
        cluster = self._require_cluster()
        indexes = self._resolve_nodes(rest, allow_all=True)
        return all([cluster.stop_node(index, crash=True) for index in indexes])

    def do_start(self, rest: str) -> bool:
        cluster = self._require_cluster()
        if rest:
            indexes = self._resolve_nodes(rest, allow_all=True)
            if normalize_word(rest) in ("todos", "all"):
                indexes = [node.node_id for node in cluster.nodes if not node.is_running()]
        else:
            indexes = [node.node_id for node in cluster.nodes if not node.is_running()]
        if not indexes:
            self.output.info("todos os nós já estão rodando")
            return True
        return all([cluster.start_node(index) for index in indexes])

    def do_restart(self, rest: str) -> bool:
        cluster = self._require_cluster()
        ok = True
        for index in self._resolve_nodes(rest, allow_all=True):
            if cluster.nodes[index].is_running():
                ok = cluster.stop_node(index, crash=False) and ok
            ok = cluster.start_node(index) and ok
        return ok

    def do_partition(self, rest: str) -> bool:
        cluster = self._require_cluster()
        try:
            groups = parse_partition(rest, len(cluster.nodes))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        return self._apply_partition(groups)

    def do_isolate(self, rest: str) -> bool:
        cluster = self._require_cluster()
        indexes = self._resolve_nodes(rest, allow_all=False)
        if len(indexes) != 1:
            raise UsageError("informe um nó só")
        others = [index for index in range(len(cluster.nodes)) if index != indexes[0]]
        if not others:
            raise UsageError("um cluster de um nó só não tem o que isolar")
        return self._apply_partition([indexes, others])

    def _apply_partition(self, groups: list[list[int]]) -> bool:
        ok = self._require_cluster().apply_partition(groups)
        described = " | ".join(" ".join(str(index) for index in group) for group in groups)
        if ok:
            self.output.info(f"partição aplicada: {described} (grupos diferentes não trocam "
                             f"mensagens Raft)")
        return ok

    def do_heal(self, rest: str) -> bool:
        if rest:
            raise UsageError(f"'curar' não recebe argumentos, e veio {rest!r}")
        cluster = self._require_cluster()
        had_partition = cluster.partition is not None
        ok = cluster.apply_partition(None)
        if ok:
            self.output.info("partição desfeita: todos os nós voltam a se comunicar"
                             if had_partition else "não havia partição; nada a desfazer")
        return ok

    def do_wait(self, rest: str) -> bool:
        cluster = self._require_cluster()
        words = rest.split()
        if len(words) > 2:
            raise UsageError("argumentos demais")
        target = normalize_word(words[0]) if words else "lider"
        if target.replace(".", "", 1).isdigit():
            if len(words) > 1:
                raise UsageError("'esperar <segundos>' não recebe prazo")
            time.sleep(float(target))
            return True
        timeout = cluster.config.command_timeout
        if len(words) == 2:
            try:
                timeout = float(words[1])
            except ValueError:
                raise UsageError(f"prazo inválido: {words[1]!r}; esperado um número de segundos")
            if timeout <= 0:
                raise UsageError(f"prazo inválido: {words[1]!r}; precisa ser maior que zero")

        if target in ("lider", "leader"):
            leader = cluster.wait_for_leader(timeout)
            if leader is None:
                self.output.error(f"nenhum líder confirmado pela maioria em {timeout:g} s; veja 'estado'")
                return False
            self.output.info(f"líder: nó {leader.get('id')} ({leader.get('url')}, termo {leader.get('term')})")
            return True
        if target in ("sincronia", "sync", "sincronizar"):
            ok, description = cluster.wait_for_sync(timeout)
            if ok:
                self.output.info(description)
            else:
                self.output.error(f"os nós não sincronizaram em {timeout:g} s: {description}")
            return ok
        raise UsageError(f"não sei esperar por {words[0]!r}; esperado 'lider', 'sincronia' ou segundos")


# ---------------------------------------------------------------------------------------------
# 8. Linha de comando e main()
# ---------------------------------------------------------------------------------------------

# argparse escreve as próprias mensagens em inglês; estas trocas cobrem as que aparecem aqui.
ARGPARSE_TRANSLATIONS = (
    ("unrecognized arguments:", "opções desconhecidas:"),
    ("expected one argument", "esperava um valor"),
    ("invalid choice:", "valor inválido:"),
    ("choose from", "escolha entre"),
    ("ignored explicit argument", "valor não esperado"),
    ("argument ", "opção "),
)


class PortugueseHelpFormatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix="uso: " if prefix is None else prefix)


class PortugueseArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        for english, portuguese in ARGPARSE_TRANSLATIONS:
            message = message.replace(english, portuguese)
        self.print_usage(sys.stderr)
        self.exit(2, f"erro: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"esperado um número inteiro, e veio {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"precisa ser maior que zero, e veio {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"esperado um número de segundos, e veio {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"precisa ser maior que zero, e veio {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = PortugueseArgumentParser(
        prog="iniciar_raft_distribuido.py",
        description=("Inicia um cluster Raft local, com cada nó (raft_distribuido.py) num processo "
                     "separado nesta máquina, espera a eleição de um líder e abre um console para "
                     "gravar e ler chaves, parar, matar e reiniciar nós e particionar o cluster."),
        epilog=("exemplos:\n"
                "  python3 iniciar_raft_distribuido.py\n"
                "  python3 iniciar_raft_distribuido.py --nodes 5 --base-port 9000 --fresh\n"
                "  printf 'put x 1\\nkill lider\\nget x\\n' | python3 iniciar_raft_distribuido.py\n"
                "\n"
                "Com a entrada padrão fora de um terminal, o console lê um comando por linha e o\n"
                "código de saída é 0 se todos deram certo e 1 se algum falhou."),
        formatter_class=PortugueseHelpFormatter,
        add_help=False,
    )
    options = parser.add_argument_group("opções")
    options.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")

    options.add_argument("--nodes", type=positive_int, default=DEFAULT_NODES, metavar="N",
                         help=f"número de nós (padrão: {DEFAULT_NODES})")
    options.add_argument("--host", default=DEFAULT_HOST,
                         help=f"endereço em que os nós escutam (padrão: {DEFAULT_HOST})")
    options.add_argument("--base-port", type=positive_int, default=DEFAULT_BASE_PORT, metavar="P",
                         help=f"porta do nó 0; o nó i usa P+i (padrão: {DEFAULT_BASE_PORT})")
    options.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), metavar="PASTA",
                         help=(f"pasta dos dados; o nó i grava em PASTA/no-i (padrão: "
                               f"./{DEFAULT_DATA_DIR}). Os dados são mantidos entre execuções."))
    options.add_argument("--fresh", action="store_true",
                         help="apaga PASTA/no-0 ... PASTA/no-(N-1) antes de iniciar, para começar do zero")

    options.add_argument("--election-timeout-min", type=positive_int, metavar="MS",
                         help="repassado aos nós: menor timeout de eleição, em milissegundos")
    options.add_argument("--election-timeout-max", type=positive_int, metavar="MS",
                         help="repassado aos nós: maior timeout de eleição, em milissegundos")
    options.add_argument("--heartbeat-interval", type=positive_int, metavar="MS",
                         help="repassado aos nós: intervalo entre heartbeats do líder, em milissegundos")
    options.add_argument("--log-level", choices=("debug", "info", "warning"),
                         help="repassado aos nós: nível de detalhe do log (padrão: o do nó)")

    options.add_argument("--leader-timeout", type=positive_seconds, default=LEADER_TIMEOUT_S,
                         metavar="S", help=(f"prazo em segundos para eleger o primeiro líder "
                                            f"(padrão: {LEADER_TIMEOUT_S:g})"))
    options.add_argument("--command-timeout", type=positive_seconds, default=COMMAND_TIMEOUT_S,
                         metavar="S",
                         help=(f"prazo em segundos de cada comando do console que depende do "
                               f"cluster, como gravar, ler e esperar (padrão: {COMMAND_TIMEOUT_S:g})"))
    options.add_argument("--no-console", action="store_true",
                         help="não abre o console: mantém o cluster rodando até Ctrl+C ou SIGTERM")
    return parser


def node_options(args: argparse.Namespace) -> list[str]:
    """Monta as opções repassadas a cada nó.

    Só entram as que o usuário deu, para que nas outras valha o padrão do próprio nó.
    """
    options = []
    for flag, value in (("--election-timeout-min", args.election_timeout_min),
                        ("--election-timeout-max", args.election_timeout_max),
                        ("--heartbeat-interval", args.heartbeat_interval),
                        ("--log-level", args.log_level)):
        if value is not None:
            options += [flag, str(value)]
    return options


class Interrupted(Exception):
    """Sinal de parada recebido pelo lançador (Ctrl+C, SIGTERM ou SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def install_signal_handlers(output: Output) -> None:
    """Faz o primeiro SIGINT, SIGTERM ou SIGHUP interromper o programa principal.

    Os seguintes só avisam, para não interromper a parada dos nós que o primeiro iniciou.
    """
    received: list[int] = []

    def handle(signum: int, frame: object) -> None:
        if received:
            output.info("já estou parando os nós; aguarde")
            return
        received.append(signum)
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handle)


def print_welcome(cluster: Cluster, leader: dict) -> None:
    urls = cluster.urls
    first, last = urls[0], urls[-1]
    middle = urls[len(urls) // 2]
    cluster.output.info(
        f"líder eleito: nó {leader.get('id')} ({leader.get('url')}, termo {leader.get('term')})\n"
        f"experimente em outro terminal:\n"
        f"  curl -X PUT -H 'Content-Type: application/json' -d '{{\"value\": 42}}' {first}/kv/x\n"
        f"  curl {last}/kv/x\n"
        f"  curl {middle}/status")


def run(args: argparse.Namespace, output: Output) -> int:
    """Inicia o cluster, executa o console e devolve o código de saída.

    Os nós são parados em qualquer saída, inclusive por sinal ou exceção.
    """
    if not NODE_SCRIPT.is_file():
        output.error(f"não encontrei {NODE_SCRIPT.name} em {NODE_SCRIPT.parent}; ele precisa "
                     f"estar na mesma pasta que {Path(__file__).name}")
        return 1
    last_port = args.base_port + args.nodes - 1
    if last_port > 65535:
        output.error(f"com --base-port {args.base_port} e --nodes {args.nodes}, o último nó usaria "
                     f"a porta {last_port}, acima de 65535; diminua um dos dois")
        return 2

    data_dir = args.data_dir.resolve()
    config = ClusterConfig(nodes=args.nodes, host=args.host, base_port=args.base_port,
                           data_dir=data_dir, node_script=NODE_SCRIPT,
                           node_options=node_options(args), leader_timeout=args.leader_timeout,
                           command_timeout=args.command_timeout)
    cluster = Cluster(config, output)
    install_signal_handlers(output)
    try:
        if args.fresh:
            for index in range(args.nodes):
                node_dir = data_dir / f"no-{index}"
                if node_dir.exists():
                    output.info(f"apagando {node_dir} (--fresh)")
                    shutil.rmtree(node_dir)
        data_note = "apagados antes de iniciar" if args.fresh else "mantidos entre execuções; --fresh apaga"
        output.info(f"iniciando {args.nodes} nó(s) em {args.host}, portas {args.base_port}-{last_port}; "
                    f"dados em {data_dir} ({data_note})")
        try:
            leader = cluster.start_all()
        except ClusterError as exc:
            output.error(str(exc))
            return 1
        print_welcome(cluster, leader)

        if args.no_console:
            output.info("rodando sem console; Ctrl+C ou SIGTERM para todos os nós")
            while True:
                time.sleep(1.0)
        stdin = sys.stdin
        if stdin is None or stdin.closed:
            return 0
        interactive = stdin.isatty()
        if interactive:
            output.info("console pronto: digite 'ajuda' para ver os comandos e 'sair' para parar o cluster")
        ok = Console(cluster, output).run(stdin, interactive)
        return 0 if ok else 1
    except Interrupted as exc:
        if sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty():
            output.info("")  # termina a linha do prompt, onde o ^C apareceu
        output.info(f"sinal {signal_name(exc.signum)} recebido")
        return 128 + exc.signum
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace", line_buffering=True)
    output = Output(sys.stdout, sys.stderr, color_enabled(sys.stdout, dict(os.environ)))
    return run(args, output)


if __name__ == "__main__":
    sys.exit(main())
