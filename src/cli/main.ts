// The `fulcrum` command: the table of commands and their flags, the usage text made from it, and
// the dispatch. Flags are checked against the table before a command runs (src/cli/args.ts).
import { runtime } from "../runtime/index.ts";
import { didYouMean } from "../config/errors.ts";
import pkg from "../../package.json" with { type: "json" };
import { type FlagSpec, flagLines, type ParsedArgs, parseArgs } from "./args.ts";
import { check, proxy, reload, run } from "./commands.ts";
import { demo } from "./demo.ts";
import { register, REGISTER_FLAGS } from "./register.ts";
import { importConfig } from "./import.ts";
import { ctl, ctlUsage } from "./ctl.ts";
import { SCHEDULER_TABLE } from "../core/schedulers.ts";
import { runWorker, WORKER_COMMAND } from "../control/workers/worker.ts";

interface Command {
  /** Flags after the command name, as the usage line shows them. */
  synopsis: string;
  summary: string;
  flags: FlagSpec[];
  /** More about the command, for its --help. */
  details?: string;
  /** Plain arguments it takes, at most (none unless given). */
  positional?: number;
  run(args: ParsedArgs): Promise<number> | number;
}

const CONFIG: FlagSpec = {
  name: "config", aliases: ["c"], value: "FILE",
  help: "the config file (default: $FULCRUM_CONFIG, ./fulcrum.yaml, /etc/fulcrum/fulcrum.yaml)",
};

const PID_FILE: FlagSpec = { name: "pid-file", value: "FILE", help: "the file holding the process id (run writes it, reload reads it)" };

const COMMANDS: Record<string, Command> = {
  run: {
    synopsis: "[--config FILE] [--pid-file FILE]",
    summary: "serve a config (default ./fulcrum.yaml, /etc/fulcrum/fulcrum.yaml); SIGHUP reloads it",
    flags: [CONFIG, PID_FILE],
    run,
  },
  reload: {
    synopsis: "--pid-file FILE [--config FILE]",
    summary: "check the config, then make the running fulcrum reload it (SIGHUP)",
    flags: [CONFIG, PID_FILE],
    run: reload,
  },
  check: {
    synopsis: "[--config FILE]",
    summary: "validate a config and exit: 0 ok, 2 errors (like nginx -t)",
    flags: [CONFIG],
    run: check,
  },
  proxy: {
    synopsis: "--listen ADDR --to ADDR[,ADDR...] [--scheduler NAME] [--workers N]",
    summary: "balance HTTP without a config file",
    flags: [
      { name: "listen", aliases: ["l", "from"], value: "ADDR", help: "the address to listen on (default 127.0.0.1:8080)" },
      { name: "to", aliases: ["t"], value: "ADDR[,ADDR...]", help: "the servers to balance" },
      { name: "scheduler", aliases: ["s"], value: "NAME", help: "how to pick a server (default wrr)" },
      { name: "workers", aliases: ["w"], value: "N|auto", help: "processes that move traffic (default auto: one per core; 1: the one process serves)" },
    ],
    run: proxy,
  },
  demo: {
    synopsis: "[--listen ADDR] [--admin ADDR] [--once]",
    summary: "three demo backends behind a balancer on 127.0.0.1:8080, the dashboard on 127.0.0.1:9901",
    flags: [
      { name: "listen", aliases: ["l"], value: "ADDR", help: "the balancer's address (default 127.0.0.1:8080)" },
      { name: "admin", value: "ADDR", help: "the admin API and dashboard's address, loopback only (default 127.0.0.1:9901)" },
      { name: "once", help: "show the spread of requests and exit" },
    ],
    run: demo,
  },
  register: {
    synopsis: "--pool NAME --address HOST:PORT [--ttl 10s] [--etcd URL | --config FILE]",
    summary: "keep this backend in a pool through etcd while the command runs",
    flags: REGISTER_FLAGS,
    run: register,
  },
  import: {
    synopsis: "keepalived FILE",
    summary: "print a keepalived.conf as Fulcrum YAML (exit 0 complete, 3 partial, 2 unreadable)",
    details: "Reads FILE and the files it includes. The YAML goes to stdout; what does not carry over is listed on\n" +
      "stderr, one line each with its file and line. Exit codes:\n" +
      "  0  complete: everything was translated\n" +
      "  3  partial: the YAML passes `fulcrum check`, but what is listed on stderr is missing or changed\n" +
      "  2  the input cannot be read or parsed (nothing is printed on stdout)",
    flags: [],
    positional: 2,
    run: importConfig,
  },
  ctl: {
    synopsis: "COMMAND [ARGS] [--config FILE] [--json]",
    summary: "the admin API: status, pools, drain, ready, maint, weight, add-server, ...",
    flags: [CONFIG, { name: "json", help: "print the API's JSON answer" }, { name: "discovery", value: "KIND", help: "add-pool: the pool's servers come from etcd" }],
    positional: Infinity,
    details: ctlUsage(),
    run: ctl,
  },
  version: {
    synopsis: "",
    summary: "print the version",
    flags: [],
    run: () => {
      console.log(`fulcrum ${pkg.version} (${runtime.name} ${runtime.version})`);
      return 0;
    },
  },
};

/** Other spellings of a command. */
const ALIASES: Record<string, string> = { "-t": "check", "--version": "version", "-v": "version" };

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => {
    const left = `  fulcrum ${name}${c.synopsis ? ` ${c.synopsis}` : ""}`;
    // A long synopsis puts its summary on the next line, as the short ones line up at column 37.
    return left.length < 37 ? `${left.padEnd(37)}${c.summary}` : `${left}\n${" ".repeat(37)}${c.summary}`;
  });
  return `fulcrum ${pkg.version}: an edge load balancer

Usage:
${lines.join("\n")}
  fulcrum COMMAND --help             the flags of a command
  fulcrum --help                     this text

Schedulers (--scheduler, pools.NAME.scheduler):
${SCHEDULER_TABLE.map((s) => `  ${s.name.padEnd(8)} ${s.summary}`).join("\n")}
`;
}

function commandHelp(name: string, c: Command): string {
  const details = c.details ? `\n${c.details}\n` : "";
  return `Usage: fulcrum ${name}${c.synopsis ? ` ${c.synopsis}` : ""}\n${c.summary}\n${details}\nFlags:\n${flagLines(c.flags).join("\n")}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [given, ...rest] = argv;
  // Not a command for people: how a supervisor starts its workers (src/control/workers/).
  if (given === WORKER_COMMAND) return runWorker();
  if (given === undefined || given === "help" || given === "--help" || given === "-h") {
    console.log(usage());
    return 0;
  }
  const name = ALIASES[given] ?? given;
  const command = COMMANDS[name];
  if (!command) {
    const hint = didYouMean(given, [...Object.keys(COMMANDS), "help"]);
    console.error(`fulcrum: unknown command "${given}"${hint ? ` (did you mean "${hint}"?)` : ""}\n\n${usage()}`);
    return 2;
  }
  const parsed = parseArgs(rest, command.flags, command.positional);
  if (!parsed.ok) {
    console.error(`fulcrum ${name}: ${parsed.error}\n  fulcrum ${name} --help lists its flags`);
    return 2;
  }
  if (parsed.args.flags.has("help")) {
    console.log(commandHelp(name, command));
    return 0;
  }
  return command.run(parsed.args);
}

runtime.exit(await main(runtime.args));
