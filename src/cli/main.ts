// The `fulcrum` command.
import { runtime } from "../runtime/index.ts";
import { didYouMean } from "../config/errors.ts";
import pkg from "../../package.json" with { type: "json" };
import { parseArgs } from "./args.ts";
import { check, proxy, run } from "./commands.ts";
import { demo } from "./demo.ts";
import { SCHEDULER_TABLE } from "../core/schedulers.ts";

const USAGE = `fulcrum ${pkg.version}: an edge load balancer

Usage:
  fulcrum run [--config FILE]        serve a config (default ./fulcrum.yaml, /etc/fulcrum/fulcrum.yaml)
  fulcrum check [--config FILE]      validate a config and exit: 0 ok, 2 errors (like nginx -t)
  fulcrum proxy --listen ADDR --to ADDR[,ADDR...] [--scheduler NAME]
                                     balance HTTP without a config file
  fulcrum demo [--listen ADDR] [--once]
                                     three demo backends behind a balancer on 127.0.0.1:8080
  fulcrum version                    print the version
  fulcrum --help                     this text

Schedulers (--scheduler, pools.NAME.scheduler):
${SCHEDULER_TABLE.map((s) => `  ${s.name.padEnd(8)} ${s.summary}`).join("\n")}
`;

const COMMANDS = ["run", "check", "proxy", "demo", "version", "help"];

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const args = parseArgs(rest, ["once", "help"]);
  switch (command) {
    case "run": return run(args);
    case "check": case "-t": return check(args);
    case "proxy": return proxy(args);
    case "demo": return demo(args);
    case "version": case "--version": case "-v":
      console.log(`fulcrum ${pkg.version} (${runtime.name} ${runtime.version})`);
      return 0;
    case undefined: case "help": case "--help": case "-h":
      console.log(USAGE);
      return 0;
  }
  const hint = didYouMean(command, COMMANDS);
  console.error(`fulcrum: unknown command "${command}"${hint ? ` (did you mean "${hint}"?)` : ""}\n\n${USAGE}`);
  return 2;
}

runtime.exit(await main(runtime.args));
