// Portway's Node.js runtime: the Lambda Runtime API loop around the function's exports.handler.
// Started by Portway with AWS_LAMBDA_RUNTIME_API, _HANDLER ("index.handler") and LAMBDA_TASK_ROOT
// set; supports async handlers and callback-style ones (event, context, callback).
"use strict";
const http = require("node:http");
const path = require("node:path");
const url = require("node:url");
const fs = require("node:fs");

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const base = "/2018-06-01/runtime";
// One kept-alive connection: a fresh TCP connection per call doubled the per-invocation cost.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, route, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: Number(port), method, path: base + route, headers: headers || {}, agent },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorPayload(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || "Error",
      errorMessage: err.message,
      trace: typeof err.stack === "string" ? err.stack.split("\n") : [],
    };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

async function postError(route, err, type) {
  const payload = JSON.stringify(errorPayload(err));
  await request("POST", route, payload, {
    "Content-Type": "application/vnd.aws.lambda.error+json",
    "Lambda-Runtime-Function-Error-Type": type,
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER || "";
  const dot = spec.lastIndexOf(".");
  if (dot < 1) {
    const err = new Error(`Bad handler ${spec}: the handler must be module.function`);
    err.name = "Runtime.MalformedHandlerName";
    throw err;
  }
  const modulePath = path.resolve(process.env.LAMBDA_TASK_ROOT, spec.slice(0, dot));
  const name = spec.slice(dot + 1);
  let mod;
  const candidates = [".js", ".mjs", ".cjs"].map((ext) => modulePath + ext).filter((f) => fs.existsSync(f));
  if (candidates.length === 0) {
    const err = new Error(`Cannot find module '${spec.slice(0, dot)}'`);
    err.name = "Runtime.ImportModuleError";
    throw err;
  }
  try {
    mod = await import(url.pathToFileURL(candidates[0]).href);
  } catch (cause) {
    if (cause instanceof SyntaxError) {
      cause.name = "Runtime.UserCodeSyntaxError";
    }
    throw cause;
  }
  const fn = mod[name] !== undefined ? mod[name] : mod.default && mod.default[name];
  if (typeof fn !== "function") {
    const err = new Error(`${spec} is undefined or not exported`);
    err.name = "Runtime.HandlerNotFound";
    throw err;
  }
  return fn;
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: undefined,
    succeed: undefined,
    fail: undefined,
  };
}

function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      if (err !== undefined && err !== null) reject(err);
      else resolve(result);
    };
    ctx.done = callback;
    ctx.succeed = (result) => callback(null, result);
    ctx.fail = (err) => callback(err);
    try {
      const returned = handler(event, ctx, callback);
      if (returned && typeof returned.then === "function") {
        returned.then((r) => callback(null, r), (e) => callback(e === undefined ? new Error("undefined") : e));
      } else if (handler.length < 3) {
        callback(null, returned);
      }
    } catch (err) {
      callback(err);
    }
  });
}

// As AWS's Node runtime: a rejection nobody handles fails the current invocation with
// Runtime.UnhandledPromiseRejection, and the process exits (Lambda starts a fresh one).
let currentId = null;
process.on("unhandledRejection", (reason) => {
  const err = new Error(reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason));
  err.name = "Runtime.UnhandledPromiseRejection";
  console.error(`${new Date().toISOString()}\t${currentId}\tERROR\t${err.name}: ${err.message}`);
  const route = currentId === null ? "/init/error" : `/invocation/${currentId}/error`;
  postError(route, err, err.name).finally(() => process.exit(128));
});

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    await postError("/init/error", err, err && err.name ? err.name : "Runtime.Unknown");
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", "/invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    currentId = id;
    const event = JSON.parse(next.body.toString("utf8") || "null");
    try {
      const result = await run(handler, event, context(next.headers));
      const body = JSON.stringify(result === undefined ? null : result);
      await request("POST", `/invocation/${id}/response`, body, { "Content-Type": "application/json" });
    } catch (err) {
      console.error(`${new Date().toISOString()}\t${id}\tERROR\t${err && err.stack ? err.stack : String(err)}`);
      await postError(`/invocation/${id}/error`, err, "Unhandled");
    }
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
