"""The frame around every view (header, role nav, who is signed in) and signing in and out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nicegui import ui
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from farpoint.console.session import Api, clear_token, server_url, store_token, stored_token
from farpoint.core.errors import FarpointError, Unauthorized
from farpoint.wire.identity import Me

__all__ = ["VIEWS", "View", "home_path", "open_view", "register"]


@dataclass(frozen=True)
class View:
    role: str
    path: str
    title: str
    whose: str
    blurb: str


VIEWS: tuple[View, ...] = (
    View(
        "data-scientist",
        "/data-science",
        "Data science",
        "data scientist",
        "Datasets with their quality, profiles and column roles; evaluations against their "
        "gates; fairness.",
    ),
    View(
        "ai-engineer",
        "/ai-engineering",
        "AI engineering",
        "AI engineer",
        "Model versions as packaged: size, flavor, input signature, ONNX parity, latency.",
    ),
    View(
        "mlops-engineer",
        "/mlops",
        "MLOps",
        "MLOps engineer",
        "Gates per model version, signed releases, rollouts to fleets.",
    ),
    View(
        "app-developer",
        "/app-developer",
        "App development",
        "app developer",
        "How to call each released model on a device: schemas, curl and SDK snippets.",
    ),
    View(
        "it-ops",
        "/it-ops",
        "IT operations",
        "IT operator",
        "Devices, what they run and whether they are healthy; fleets. Refreshes itself.",
    ),
    View(
        "business",
        "/business",
        "Business",
        "business reader",
        "Models in production and how delivery is going.",
    ),
    View(
        "admin",
        "/admin",
        "Administration",
        "admin",
        "Users, service accounts and API tokens.",
    ),
)
_BY_ROLE = {view.role: view for view in VIEWS}


def home_path(roles: Iterable[str]) -> str:
    """The view of the first role a token holds (the user's primary role)."""
    for role in roles:
        if str(role) in _BY_ROLE:
            return _BY_ROLE[str(role)].path
    return "/login"


def _views_for(me: Me) -> list[View]:
    held = {str(role) for role in me.roles}
    if "admin" in held:  # an admin sees everything (DESIGN §1)
        return list(VIEWS)
    return [view for view in VIEWS if view.role in held]


def _prefixed(request: Request, path: str) -> str:
    return str(request.scope.get("root_path", "")) + path


async def open_view(request: Request, role: str) -> Api | Response | None:
    """Check the signed-in token and draw the frame of `role`'s view.

    Returns the API handle to fill the view with; a redirect to the sign-in page when
    nobody is signed in; None when the view could not be opened (already explained on
    the page).
    """
    token = stored_token()
    if token is None:
        return RedirectResponse(_prefixed(request, "/login"), status_code=303)
    api = Api(server_url(request), token)
    ui.context.client.on_delete(api.close)
    try:
        me = await api.me()
    except Unauthorized:
        clear_token()
        api.close()
        return RedirectResponse(_prefixed(request, "/login?expired=1"), status_code=303)
    except FarpointError as exc:
        with ui.column().classes("w-full items-center mt-16"):
            ui.label("The console cannot read your account").classes("text-h6")
            ui.label(f"{exc.title}: {exc.detail}").classes("text-negative")
        return None
    _frame(me, _BY_ROLE[role])
    return api


def _frame(me: Me, view: View) -> None:
    ui.add_css(_CSS)
    with ui.header(elevated=False).classes("bg-blue-grey-9 text-white items-center gap-2 px-4"):
        ui.label("Farpoint").classes("text-h6 text-weight-bold mr-4")
        for other in _views_for(me):
            active = other.role == view.role
            link = ui.link(other.title, other.path).classes("nav-link")
            if active:
                link.classes("nav-active")
        ui.space()
        ui.label(me.user).classes("text-weight-medium")
        ui.label("· " + ", ".join(str(r) for r in me.roles)).classes("text-caption text-grey-4")
        ui.link("Sign out", "/logout").classes("nav-link ml-3")
    with ui.column().classes("w-full gap-0"):
        ui.label(f"{view.title}").classes("text-h5 text-weight-medium view-title")
        ui.label(f"The {view.whose}'s view. {view.blurb}").classes("text-body2 text-grey-8")
        held = {str(role) for role in me.roles}
        if view.role not in held and "admin" not in held:
            ui.label(
                f"Your token does not hold the {view.role} role: this is a look, and the "
                "server may refuse some of it."
            ).classes("text-caption text-orange-9 mt-1")


_CSS = """
.nav-link { color: #e3e8ee !important; text-decoration: none; padding: 4px 10px;
            border-radius: 4px; font-size: 0.92rem; }
.nav-link:hover { background: rgba(255,255,255,0.12); }
.nav-active { background: rgba(255,255,255,0.22); color: #fff !important; font-weight: 600; }
.nicegui-content { max-width: 1280px; margin: 0 auto; padding: 20px 24px; }
.q-table th { font-weight: 600; background: #f5f7f9; }
.nicegui-code pre, .nicegui-code code { white-space: pre-wrap; overflow-wrap: anywhere; }
"""


def register() -> None:
    """The sign-in, sign-out and root pages."""

    @ui.page("/", title="Farpoint")
    async def root(request: Request) -> Response | None:
        token = stored_token()
        if token is None:
            return RedirectResponse(_prefixed(request, "/login"), status_code=303)
        api = Api(server_url(request), token)
        try:
            me = await api.me()
        except FarpointError:
            return RedirectResponse(_prefixed(request, "/login"), status_code=303)
        finally:
            api.close()
        return RedirectResponse(_prefixed(request, home_path(me.roles)), status_code=303)

    @ui.page("/logout", title="Signed out · Farpoint")
    def logout(request: Request) -> Response:
        clear_token()
        return RedirectResponse(_prefixed(request, "/login"), status_code=303)

    @ui.page("/login", title="Sign in · Farpoint", response_timeout=15)
    async def login(
        request: Request, token: str | None = None, expired: str | None = None
    ) -> Response | None:
        problem = "Your session ended: sign in again." if expired else ""
        if token:
            api = Api(server_url(request), token.strip())
            try:
                me = await api.me()
            except FarpointError as exc:
                problem = f"That token is not valid: {exc.detail}"
            else:
                store_token(token.strip())
                return RedirectResponse(_prefixed(request, home_path(me.roles)), status_code=303)
            finally:
                api.close()
        _sign_in_form(request, problem)
        return None


def _sign_in_form(request: Request, problem: str) -> None:
    ui.add_css(_CSS)
    base = server_url(request)

    async def sign_in() -> None:
        value = (entry.value or "").strip()
        if not value:
            message.set_text("Paste a token first.")
            message.set_visibility(True)
            return
        api = Api(base, value)
        try:
            me = await api.me()
        except FarpointError as exc:
            message.set_text(f"That token is not valid: {exc.detail}")
            message.set_visibility(True)
            return
        finally:
            api.close()
        store_token(value)
        ui.navigate.to(home_path(me.roles))

    with (
        ui.column().classes("w-full items-center mt-20"),
        ui.card().classes("w-[32rem] p-6 gap-3"),
    ):
        ui.label("Farpoint").classes("text-h4 text-weight-bold")
        ui.label("Sign in with an API token").classes("text-subtitle1 text-grey-8")
        ui.label(
            "An admin creates one with `farpoint token create USER --role ROLE`; "
            "`farpoint demo` prints a ready sign-in link per role."
        ).classes("text-caption text-grey-7")
        entry = ui.input("API token", password=True, password_toggle_button=True)
        entry.classes("w-full").props("outlined autofocus")
        entry.on("keydown.enter", sign_in)
        message = ui.label(problem).classes("text-negative login-error")
        message.set_visibility(bool(problem))
        ui.button("Sign in", on_click=sign_in).props("unelevated color=primary")
