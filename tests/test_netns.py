"""Três nós em três namespaces de rede, como três máquinas do laboratório.

Cada nó roda no seu namespace, com o seu endereço IP, e fala com os outros por
um par veth ligado a uma bridge, que fica num quarto namespace criado pelo
teste. Os endereços (10.77.0.0/24) só existem dentro desses namespaces, então
nenhum pacote sai da máquina nem chega à rede do host. O teste precisa de root
e do comando `ip` (iproute2); sem eles, é pulado com o motivo.
"""

import concurrent.futures
import ctypes
import os
import shutil
import subprocess
import sys
import unittest
from typing import Optional

# Deixa `python3 -m unittest tests.test_netns` achar cluster_util.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_util import (ClusterTestCase, http_request, others, put_with_retry,  # noqa: E402
                          start_all, wait_for_applied, wait_for_leader)

CLONE_NEWNET = 0x40000000
NETNS_FOLDERS = ("/run/netns", "/var/run/netns")

SUBNET = "10.77.0"
BRIDGE_ADDRESS = f"{SUBNET}.254"
NODE_INTERFACE = "eth0"
# Cada namespace é novo e vazio, então estas portas estão livres nele.
FIRST_NODE_PORT = 18000
# Um cliente do nó isolado espera no máximo isto antes do 503. O padrão de 5 s
# só deixaria o teste mais lento.
REQUEST_TIMEOUT_ARGS = ("--request-timeout", "1500")


class NetworkSetupError(Exception):
    """Um comando `ip` falhou ao montar a rede do teste."""


def run_ip(*arguments: str) -> None:
    completed = subprocess.run(["ip", *arguments], capture_output=True, text=True,
                               timeout=20)
    if completed.returncode != 0:
        raise NetworkSetupError(f"'ip {' '.join(arguments)}' falhou com código "
                                f"{completed.returncode}: {completed.stderr.strip()}")


def netns_unavailable_reason() -> Optional[str]:
    """Devolve por que este teste não pode rodar aqui, ou None se ele pode."""
    if not sys.platform.startswith("linux"):
        return f"namespaces de rede só existem no Linux (plataforma: {sys.platform})"
    if os.geteuid() != 0:
        return (f"criar namespaces de rede exige root (uid atual: {os.geteuid()}); "
                f"rode os testes como root para incluir este")
    if shutil.which("ip") is None:
        return "o comando ip (pacote iproute2) não está instalado"
    try:
        run_ip("netns", "list")
    except (NetworkSetupError, OSError, subprocess.TimeoutExpired) as error:
        return f"'ip netns' não funciona nesta máquina: {error}"
    return None


class NamespaceNetwork:
    """Uma bridge num namespace próprio e um namespace por nó, ligados por veth."""

    def __init__(self, prefix: str, size: int):
        self.bridge_namespace = f"{prefix}-ponte"
        self.node_namespaces = [f"{prefix}-no{number}" for number in range(size)]
        self.created: list = []

    def node_address(self, number: int) -> str:
        return f"{SUBNET}.{number + 1}"

    def create(self) -> None:
        """Monta a rede. Levanta NetworkSetupError com o comando que falhou."""
        bridge = self.bridge_namespace
        self._add_namespace(bridge)
        run_ip("-n", bridge, "link", "set", "lo", "up")
        run_ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        run_ip("-n", bridge, "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", "br0")
        run_ip("-n", bridge, "link", "set", "br0", "up")
        for number, namespace in enumerate(self.node_namespaces):
            self._add_namespace(namespace)
            port = f"v{number}"
            run_ip("-n", bridge, "link", "add", port, "type", "veth",
                   "peer", "name", NODE_INTERFACE, "netns", namespace)
            run_ip("-n", bridge, "link", "set", port, "master", "br0")
            run_ip("-n", bridge, "link", "set", port, "up")
            run_ip("-n", namespace, "link", "set", "lo", "up")
            run_ip("-n", namespace, "addr", "add", f"{self.node_address(number)}/24",
                   "dev", NODE_INTERFACE)
            run_ip("-n", namespace, "link", "set", NODE_INTERFACE, "up")

    def _add_namespace(self, name: str) -> None:
        run_ip("netns", "add", name)
        self.created.append(name)

    def set_node_link(self, number: int, up: bool) -> None:
        run_ip("-n", self.node_namespaces[number], "link", "set", NODE_INTERFACE,
               "up" if up else "down")

    def delete(self) -> None:
        """Apaga os namespaces criados, e com eles os veth e a bridge."""
        failures = []
        for name in reversed(self.created):
            try:
                run_ip("netns", "delete", name)
            except (NetworkSetupError, OSError, subprocess.TimeoutExpired) as error:
                failures.append(str(error))
        self.created = []
        if failures:
            raise NetworkSetupError("; ".join(failures))


def _namespace_path(name: str) -> str:
    for folder in NETNS_FOLDERS:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"namespace {name} não encontrado em {NETNS_FOLDERS}")


def _enter_namespace(path: str) -> None:
    """Move a thread atual para o namespace de rede em `path`.

    setns(2) com CLONE_NEWNET vale só para a thread que chama, então as outras
    threads do processo de testes continuam na rede do host.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):  # Python 3.12 ou mais novo.
            os.setns(descriptor, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns({path}) falhou: {os.strerror(code)}")
    finally:
        os.close(descriptor)


class NamespaceHttp:
    """Faz requisições HTTP de dentro de um namespace, por threads que entraram nele."""

    def __init__(self, namespace: str):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix=f"http-{namespace}",
            initializer=_enter_namespace, initargs=(_namespace_path(namespace),))
        # Uma tarefa vazia faz as threads nascerem, e um erro do setns aparece já.
        self._executor.submit(lambda: None).result(timeout=10)

    def __call__(self, host, port, method, path, **options):
        return self._executor.submit(http_request, host, port, method, path,
                                     **options).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class NamespaceClusterTest(ClusterTestCase):
    def setUp(self):
        reason = netns_unavailable_reason()
        if reason is not None:
            self.skipTest(reason)
        super().setUp()
        self.network = NamespaceNetwork(f"rafttest{os.getpid()}", 3)
        self.addCleanup(self.network.delete)
        try:
            self.network.create()
        except NetworkSetupError as error:
            self.skipTest(f"não foi possível montar a rede de namespaces: {error}")
        self.client = NamespaceHttp(self.network.bridge_namespace)
        self.addCleanup(self.client.close)
        self.nodes = self.make_namespace_cluster()

    def make_namespace_cluster(self) -> list:
        addresses = [self.network.node_address(number) for number in range(3)]
        urls = [f"http://{address}:{FIRST_NODE_PORT + number}"
                for number, address in enumerate(addresses)]
        nodes = []
        for number, address in enumerate(addresses):
            peers = [url for other, url in enumerate(urls) if other != number]
            prefix = ("ip", "netns", "exec", self.network.node_namespaces[number])
            nodes.append(self.make_node(str(number), address, FIRST_NODE_PORT + number, peers,
                                        command_prefix=prefix, http=self.client,
                                        extra_args=REQUEST_TIMEOUT_ARGS))
        return nodes

    def test_link_down_and_up(self):
        nodes = self.nodes
        start_all(nodes)
        leader = wait_for_leader(nodes, timeout=5.0)
        first = put_with_retry(leader, "antes", {"rede": "inteira"})
        wait_for_applied(nodes, first["index"])
        for node in nodes:
            response = node.get("antes")
            self.assertEqual(response.status, 200, f"nó {node.node_id}: {response.describe()}")
            self.assertEqual(response.json()["value"], {"rede": "inteira"})

        # O líder perde o cabo: os outros dois elegem outro e seguem gravando.
        isolated = leader
        self.network.set_node_link(nodes.index(isolated), up=False)
        survivors = others(nodes, isolated)
        new_leader = wait_for_leader(survivors, timeout=5.0)
        self.assertIsNot(new_leader, isolated)
        written = {"antes": ({"rede": "partida"}, None)}
        put_with_retry(new_leader, "antes", {"rede": "partida"})
        for number in range(3):
            answer = put_with_retry(survivors[number % 2], f"sem-cabo-{number}", number)
            written[f"sem-cabo-{number}"] = (number, answer["index"])
        last_index = max(index for _, index in written.values() if index is not None)
        wait_for_applied(survivors, last_index)

        # Isolado, o nó antigo não pode responder com dados velhos nem confirmar
        # uma escrita. Quem pergunta é um cliente dentro do namespace dele.
        local_client = NamespaceHttp(self.network.node_namespaces[nodes.index(isolated)])
        self.addCleanup(local_client.close)
        stale_read = local_client(isolated.host, isolated.port, "GET", "/kv/antes",
                                  timeout=10.0)
        self.assertEqual(stale_read.status, 503, f"leitura no nó isolado: "
                                                 f"{stale_read.describe()}")
        self.assertIn("retry-after", stale_read.headers)
        lost_write = local_client(isolated.host, isolated.port, "PUT", "/kv/so-no-isolado",
                                  body={"value": 1}, timeout=10.0)
        self.assertEqual(lost_write.status, 503, f"escrita no nó isolado: "
                                                 f"{lost_write.describe()}")

        # O cabo volta: o nó isolado alcança o log e o cluster volta a ter três.
        self.network.set_node_link(nodes.index(isolated), up=True)
        wait_for_applied([isolated], last_index, timeout=10.0)
        wait_for_leader(nodes, timeout=10.0)
        for key, (value, _) in written.items():
            response = isolated.get(key)
            self.assertEqual(response.status, 200, f"{key}: {response.describe()}")
            self.assertEqual(response.json()["value"], value, key)
        # A escrita recusada no isolamento nunca teve maioria. Se ela chegou ao
        # log do nó isolado, o líder novo, com log mais atualizado, a apagou.
        self.assertEqual(isolated.get("so-no-isolado").status, 404)
        after = put_with_retry(isolated, "de-volta", True)
        wait_for_applied(nodes, after["index"])


if __name__ == "__main__":
    unittest.main()
