"""The service registry: who provides ``threads``, ``messages``, ``inference``...

Several extensions may provide one service; ``settings.json`` ``modules`` names the chosen one,
otherwise the first registered wins. Consumers look services up at call time, so swapping a
provider takes effect on the next request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jan.sdk.errors import Unavailable
from jan.sdk.extension import Disposable


class _Lazy:
    """A service created on first lookup (the CLI's engine and sandbox: most commands never
    ask for them, so they never start)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self.value: Any = None
        self.made = False


class ServiceRegistry:
    def __init__(self, choose: Callable[[str], str | None]) -> None:
        self._providers: dict[str, dict[str, Any]] = {}
        self._choose = choose

    def provide(self, name: str, impl: Any, *, provider: str) -> Disposable:
        self._providers.setdefault(name, {})[provider] = impl

        def remove() -> None:
            impls = self._providers.get(name, {})
            if impls.get(provider) is impl:
                del impls[provider]

        return Disposable(remove)

    def provide_lazy(self, name: str, factory: Callable[[], Any], *, provider: str) -> Disposable:
        """Provide ``name`` by ``factory()``, called on the first ``get`` that picks it."""
        return self.provide(name, _Lazy(factory), provider=provider)

    def providers(self, name: str) -> list[str]:
        return list(self._providers.get(name, {}))

    def names(self) -> list[str]:
        """Every service name with at least one provider."""
        return [name for name, impls in self._providers.items() if impls]

    def chosen(self, name: str) -> Any | None:
        """The provider a lookup would pick if it is already running, else ``None`` (a lazy
        service not yet started, a chosen provider that is not active): never starts one."""
        impls = self._providers.get(name, {})
        wanted = self._choose(name) or next(iter(impls), None)
        impl = impls.get(wanted) if wanted is not None else None
        if isinstance(impl, _Lazy):
            return impl.value if impl.made else None
        return impl

    def get(self, name: str, *, provider: str | None = None) -> Any:
        impls = self._providers.get(name, {})
        wanted = provider or self._choose(name)
        if wanted is not None:
            if wanted in impls:
                return self._materialize(name, wanted)
            raise Unavailable(f"Service '{name}' provider '{wanted}' is not active")
        if impls:
            return self._materialize(name, next(iter(impls)))
        raise Unavailable(f"No extension provides the '{name}' service")

    def _materialize(self, name: str, provider: str) -> Any:
        impl = self._providers[name][provider]
        if not isinstance(impl, _Lazy):
            return impl
        if not impl.made:
            try:
                impl.value = impl.factory()
            except Exception as exc:  # noqa: BLE001 - the caller gets a 503, not a crash
                raise Unavailable(f"Service '{name}' could not start: {exc}") from exc
            impl.made = True
        return impl.value


class ScopedServices:
    """The view of the registry one extension gets: provides in its own name."""

    def __init__(self, registry: ServiceRegistry, owner: str, own: Callable[[Disposable], Any]):
        self._registry, self._owner, self._own = registry, owner, own

    def provide(self, name: str, impl: Any) -> Disposable:
        return self._own(self._registry.provide(name, impl, provider=self._owner))

    def get(self, name: str, *, provider: str | None = None) -> Any:
        return self._registry.get(name, provider=provider)

    def providers(self, name: str) -> list[str]:
        return self._registry.providers(name)
