// Drives Portway's @connections API with the AWS JS SDK v3, unmodified.
// usage: node mgmt.mjs ENDPOINT CONNECTION_ID  -> prints one JSON line of results
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
  GetConnectionCommand,
  DeleteConnectionCommand,
  GoneException,
} from "@aws-sdk/client-apigatewaymanagementapi";

const [endpoint, connectionId] = process.argv.slice(2);
const client = new ApiGatewayManagementApiClient({
  endpoint,
  region: "us-east-1",
  // The keys to sign with (the gateway checks them when management.auth is iam).
  credentials: {
    accessKeyId: process.env.PORTWAY_TEST_KEY_ID ?? "AKIDEXAMPLE",
    secretAccessKey: process.env.PORTWAY_TEST_SECRET ?? "secret",
  },
});
const out = {};
const post = await client.send(
  new PostToConnectionCommand({ ConnectionId: connectionId, Data: new TextEncoder().encode("from js") }),
);
out.post = post.$metadata.httpStatusCode;
const info = await client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
out.get = { status: info.$metadata.httpStatusCode, sourceIp: info.Identity.SourceIp, connectedAt: info.ConnectedAt instanceof Date };
const del = await client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
out.delete = del.$metadata.httpStatusCode;
try {
  await client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
  out.gone = "no error";
} catch (err) {
  out.gone = err instanceof GoneException ? "GoneException" : `${err.name}`;
}
console.log(JSON.stringify(out));
