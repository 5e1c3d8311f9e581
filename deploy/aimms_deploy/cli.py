"""The ``aimms`` command line: a root app with a ``local`` group for the local infrastructure."""

from __future__ import annotations

import asyncio
import shlex
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from aimms_registration.demo import DemoPortal

from .local_stack import COMPONENTS, SERVICES, LocalStack, LocalStackError, StepResult
from .smtp_sink import read_messages

app = typer.Typer(no_args_is_help=True, help="AIMMS development, test and deployment commands.")
local_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Local infrastructure (Kafka, FerretDB, SMTP sink) with all state under <repo>/var/ "
        "(or $AIMMS_VAR_DIR). A KAFKA_BOOTSTRAP_SERVERS or MONGODB_URI pointing elsewhere is used "
        "instead of the local server; AIMMS_KAFKA_PORT, AIMMS_KAFKA_CONTROLLER_PORT, "
        "AIMMS_FERRETDB_PORT and AIMMS_SMTP_PORT move the local ports."
    ),
)
app.add_typer(local_app, name="local")


class Component(StrEnum):
    """Components accepted on the command line."""

    kafka = "kafka"
    ferretdb = "ferretdb"
    smtp = "smtp"


# Everything that writes a log under var/log: the infrastructure and the services.
LogSource = StrEnum("LogSource", {name: name for name in (*COMPONENTS, *SERVICES)})


def _stack(quiet: bool = False) -> LocalStack:
    try:
        return LocalStack(progress=None if quiet else typer.echo)
    except LocalStackError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _summary(title: str, results: list[StepResult], total: float) -> None:
    typer.echo(f"\n{title} ({total:.1f} s):")
    for r in results:
        detail = f"  {r.detail}" if r.detail else ""
        typer.echo(f"  {r.name:<14} {r.action:<16} {r.seconds:6.1f} s{detail}")


def _print_endpoints(stack: LocalStack) -> None:
    typer.echo("\nEndpoints:")
    for key, value in stack.endpoints().items():
        typer.echo(f"  {key}={value}")


@local_app.command()
def install() -> None:
    """Fetch the Kafka jars and build FerretDB (cached; safe to rerun)."""
    stack = _stack()
    t0 = time.monotonic()
    try:
        results = stack.install()
    except LocalStackError as exc:
        _fail(str(exc))
    _summary("Install", results, time.monotonic() - t0)


@local_app.command()
def start(
    components: Annotated[list[Component] | None, typer.Argument(help="Default: all.")] = None,
) -> None:
    """Install if needed, start what is not running, and wait until everything answers."""
    stack = _stack()
    t0 = time.monotonic()
    try:
        results = stack.start([c.value for c in components] if components else None)
    except LocalStackError as exc:
        _fail(str(exc))
    _summary("Local stack up", results, time.monotonic() - t0)
    _print_endpoints(stack)


@local_app.command()
def stop(
    components: Annotated[list[Component] | None, typer.Argument(help="Default: all.")] = None,
) -> None:
    """Stop the components started by aimms (SIGTERM, then SIGKILL after a grace period)."""
    stack = _stack()
    t0 = time.monotonic()
    try:
        results = stack.stop([c.value for c in components] if components else None)
    except LocalStackError as exc:
        _fail(str(exc))
    _summary("Stop", results, time.monotonic() - t0)


@local_app.command()
def status() -> None:
    """Show each component's state; exit code 0 only if all of them answer."""
    stack = _stack(quiet=True)
    statuses = stack.status()
    for s in statuses:
        colour = typer.colors.GREEN if s.up else typer.colors.RED
        state = typer.style(f"{s.state:<9}", fg=colour)
        pid = str(s.pid) if s.pid else "-"
        note = f"  ({s.note})" if s.note else ""
        typer.echo(f"{s.name:<9} {state} pid={pid:<8} answers={'yes' if s.ready else 'no ':<3} {s.endpoint}{note}")
    raise typer.Exit(0 if all(s.up for s in statuses) else 1)


@local_app.command()
def logs(
    component: LogSource,  # type: ignore[valid-type]
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many past lines to show.")] = 50,
) -> None:
    """Print a component's log (var/log/<component>.log)."""
    stack = _stack(quiet=True)
    try:
        for line in stack.tail_log(component.value, lines=lines, follow=follow):
            typer.echo(line)
    except LocalStackError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@local_app.command()
def env() -> None:
    """Print `export` lines for the endpoints (use: eval "$(aimms local env)")."""
    for key, value in _stack(quiet=True).endpoints().items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@local_app.command()
def reset() -> None:
    """Stop everything and delete data, mail, logs (keeps the Kafka jars and FerretDB binary)."""
    stack = _stack()
    try:
        removed = stack.reset()
    except LocalStackError as exc:
        _fail(str(exc))
    for path in removed:
        typer.echo(f"removed {path}")
    typer.echo("Local stack reset.")


@app.command()
def up() -> None:
    """Run the whole platform locally: infrastructure, the services, the portal, and demo data."""
    stack = _stack()
    t0 = time.monotonic()
    try:
        results = stack.start(COMPONENTS)
        results += stack.start(SERVICES)
    except LocalStackError as exc:
        _fail(str(exc))
    _summary("Platform up", results, time.monotonic() - t0)
    portal = _seed_demo(stack)
    _load_cohort(stack)
    base = stack.service_url("registration")
    endpoints = stack.endpoints()
    typer.echo("\nServices (OpenAPI docs at /docs, events at /asyncapi.json, health at /readyz):")
    for name, status in ((s.name, s) for s in stack.status(SERVICES)):
        if name == "portal":
            typer.echo(f"  {name:<14} {status.endpoint}/  (the emails' links; coordinators at /coordinators)")
        else:
            typer.echo(f"  {name:<14} {status.endpoint}/docs")
    typer.echo(f"\nEmails received by the SMTP sink: {endpoints['SMTP_SINK_DIR']}  (list them: aimms mail)")
    typer.echo("Logs: aimms local logs <component>; stop everything: aimms down")
    typer.echo("\nTry it: a portal's token, then an expression of interest, then the email it caused:")
    typer.echo(
        f"  TOKEN=$(curl -s {base}/oauth/token -d grant_type=client_credentials "
        f"-d client_id={portal.client_id} -d client_secret={portal.client_secret} | jq -r .access_token)\n"
        f"  curl -s {base}/interests -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' "
        '-d \'{"name": "Dr Amina Okafor", "email": "amina@example.org", "programme_id": "aimms-mentoring"}\'\n'
        "  .venv/bin/aimms mail"
    )


@app.command()
def down() -> None:
    """Stop the services and the local infrastructure (data is kept; `aimms local reset` wipes it)."""
    stack = _stack()
    t0 = time.monotonic()
    try:
        results = stack.stop(SERVICES) + stack.stop(COMPONENTS)
    except LocalStackError as exc:
        _fail(str(exc))
    _summary("Platform down", results, time.monotonic() - t0)


@app.command()
def demo() -> None:
    """Load the demo institutions, programmes and a cohort with its first round (idempotent; services running)."""
    stack = _stack(quiet=True)
    _seed_demo(stack)
    _load_cohort(stack)


@app.command()
def mail(last: Annotated[int, typer.Option("--last", "-n", help="How many messages to list.")] = 20) -> None:
    """List the newest messages the local SMTP sink received."""
    stack = _stack(quiet=True)
    messages = read_messages(Path(stack.endpoints()["SMTP_SINK_DIR"]))
    for message in messages[-last:]:
        typer.echo(f"{message['Date'] or '-':<32} {message['To']:<45} {message['Subject']}")
    typer.echo(f"({len(messages)} message(s) in all)")


def _load_cohort(stack: LocalStack) -> None:
    """Register the demo cohort through the APIs, as portals would, and run the first round."""
    from aimms_deploy import demo_cohort

    secrets = stack.registration_secrets()
    registration, matching, notifications = (
        stack.service_url(name) for name in ("registration", "matching", "notifications")
    )
    typer.echo("\nLoading the demo cohort through the APIs and running a matching round…")
    report = asyncio.run(
        demo_cohort.load(
            registration,
            matching,
            notifications,
            secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"],
            secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"],
        )
    )
    stable, residual = report["stable"], report["residual"]
    typer.echo(
        f"  {report['mentees']} mentees, {report['mentors']} mentors: {report['proposed']} pairs proposed, "
        f"{report['unmatched']} unmatched; 1st choice {stable['first_choice_rate']:.0%}, "
        f"any of three {stable['any_choice_rate']:.0%}, blocking pairs {stable['blocking_pairs']}, "
        f"residual round {residual['matched']} of {residual['mentees']}"
    )
    typer.echo(
        f"  coordinators' dashboard: {stack.service_url('portal')}/coordinators  (sign in with "
        f"client ID {secrets['REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID']} and "
        f"secret {secrets['REGISTRATION_BOOTSTRAP_ADMIN_SECRET']})"
    )
    typer.echo(f"  a participant's own page: {stack.service_url('portal')}/me  (an emailed link; see aimms mail)")


def _seed_demo(stack: LocalStack) -> DemoPortal:
    # Imported here: the platform's packages are only needed by the commands that run it.
    from aimms_registration.demo import DEMO_INSTITUTIONS, DEMO_PROGRAMMES, seed
    from aimms_registration.settings import RegistrationSettings

    endpoints = stack.endpoints()
    secrets = stack.registration_secrets()
    settings = RegistrationSettings(
        kafka_bootstrap_servers=endpoints["KAFKA_BOOTSTRAP_SERVERS"],
        mongodb_uri=endpoints["MONGODB_URI"],
        public_url=stack.service_url("portal"),
        **{key.removeprefix("REGISTRATION_").lower(): value for key, value in secrets.items()},
    )
    portal = asyncio.run(seed(settings))
    typer.echo("\nDemo data loaded:")
    for institution_id, name, _ in DEMO_INSTITUTIONS:
        typer.echo(f"  institution  {institution_id:<18} {name}")
    for programme in DEMO_PROGRAMMES:
        typer.echo(f"  programme    {programme.programme_id:<18} {programme.name}")
    typer.echo("\nCredentials (local only):")
    typer.echo(f"  demo-university portal  client_id={portal.client_id}  client_secret={portal.client_secret}")
    typer.echo(
        f"  administrator           client_id={secrets['REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID']}"
        f"  client_secret={secrets['REGISTRATION_BOOTSTRAP_ADMIN_SECRET']}"
    )
    return portal
