// nodejs20.x handlers of the served project (tests/integrations/test_runtime_api_gateway.py).
exports.rest = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    name: event.pathParameters.name,
    stage: event.requestContext.stage,
    runtime: process.env.AWS_EXECUTION_ENV,
  }),
});

exports.ws = (event, context, callback) =>
  callback(null, { statusCode: 200, body: `echo:${event.requestContext.routeKey}:${event.body}` });

exports.fails = async () => {
  throw new Error("kaput");
};

exports.slow = async () => new Promise((resolve) => setTimeout(resolve, 20000));
