// Checks KQL text with Microsoft's own parser (Kusto.Language, npm @kusto/language-service-next).
// stdin: {"queries": ["..."], "literals": ["\"...\""]}
// stdout: {"queries": [[{"code","message","start","length"}...]...], "literals": ["decoded value"...]}
// The schema below holds the real Log Analytics column names and types of the tables the adapter
// reads, so a wrong-case table or column (which the DuckDB emulator would accept) is reported.
"use strict";
const path = require("path");
const pkg = path.join(__dirname, "node_modules", "@kusto", "language-service-next");
require(path.join(pkg, "bridge.min.js"));
require(path.join(pkg, "Kusto.Language.Bridge.min.js"));

const K = Kusto.Language;
const S = K.Symbols;

const TABLES = {
  Heartbeat:
    "(TimeGenerated:datetime, Computer:string, Category:string, OSType:string, OSName:string, " +
    "OSMajorVersion:string, OSMinorVersion:string, Version:string, ComputerIP:string, " +
    "ComputerEnvironment:string, SourceComputerId:string, Solutions:string, SCAgentChannel:string, " +
    "SourceSystem:string, ResourceId:string, Resource:string, ResourceGroup:string, " +
    "ResourceProvider:string, ResourceType:string, SubscriptionId:string, IsGatewayInstalled:bool, " +
    "ManagementGroupName:string, RemoteIPCountry:string, RemoteIPLatitude:real, " +
    "RemoteIPLongitude:real, VMUUID:string, TenantId:string, Type:string, _ResourceId:string, " +
    "_SubscriptionId:string)",
  Perf:
    "(TimeGenerated:datetime, Computer:string, ObjectName:string, CounterName:string, " +
    "InstanceName:string, CounterValue:real, CounterPath:string, SourceSystem:string, " +
    "BucketStartTime:datetime, BucketEndTime:datetime, Min:real, Max:real, SampleCount:int, " +
    "StandardDeviation:real, MG:string, TenantId:string, Type:string, _ResourceId:string, " +
    "_SubscriptionId:string)",
  Event:
    "(TimeGenerated:datetime, Computer:string, EventLog:string, EventID:int, EventLevel:int, " +
    "EventLevelName:string, EventCategory:int, Source:string, RenderedDescription:string, " +
    "UserName:string, ParameterXml:string, EventData:string, ManagementGroupName:string, " +
    "SourceSystem:string, MG:string, AzureDeploymentID:string, Role:string, TenantId:string, " +
    "Type:string, _ResourceId:string, _SubscriptionId:string)",
  InsightsMetrics:
    "(TenantId:string, Computer:string, Origin:string, Namespace:string, Name:string, Val:real, " +
    "Tags:string, AgentId:string, TimeGenerated:datetime, SourceSystem:string, Type:string, " +
    "_ResourceId:string, _SubscriptionId:string)",
};

function globals() {
  const tables = Object.entries(TABLES).map(([name, schema]) => new S.TableSymbol.$ctor7(name, schema, null));
  return K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor("workspace", tables));
}

function diagnostics(code) {
  const list = code.GetDiagnostics();
  const out = [];
  for (let i = 0; i < list.Count; i++) {
    const d = list.getItem(i);
    out.push({ code: d.Code, message: d.Message, start: d.Start, length: d.Length });
  }
  return out;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input || "{}");
  const g = globals();
  const result = {
    queries: (request.queries || []).map((q) => diagnostics(K.KustoCode.ParseAndAnalyze(q, g))),
    literals: (request.literals || []).map((l) => K.KustoFacts.GetStringLiteralValue(l)),
  };
  process.stdout.write(JSON.stringify(result));
});
