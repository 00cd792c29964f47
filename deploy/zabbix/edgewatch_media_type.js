// edgewatch: a Zabbix webhook media type (the body of the script; Zabbix calls it with `value`, the
// media type's parameters as a JSON object of strings). It posts one event to edgewatch's
// POST /api/v1/ingest/zabbix with an API token of role `ingest`; docs/integrations.md lists the
// parameters and the install steps.
//
// Parameters (name: value to give it in the media type):
//   edgewatch_url:        https://edgewatch.example.com   (the server's address, no trailing path)
//   edgewatch_token:      an API token of role ingest
//   event_id:             {EVENT.ID}
//   event_value:          {EVENT.VALUE}             1 a problem, 0 its recovery
//   event_update_status:  {EVENT.UPDATE.STATUS}     1 an update (acknowledgement, comment): ignored
//   event_severity:       {EVENT.SEVERITY}          Not classified, Information, Warning, Average, High, Disaster
//   event_name:           {EVENT.NAME}
//   trigger_name:         {TRIGGER.NAME}
//   trigger_description:  {TRIGGER.DESCRIPTION}
//   host:                 {HOST.HOST}
//   event_tags:           {EVENT.TAGSJSON}          [{"tag": "device", "value": "gw-0001"}, ...]

var EDGEWATCH_FIELDS = ["event_id", "event_value", "event_update_status", "event_severity", "event_name",
    "trigger_name", "trigger_description", "host"];

function unexpanded(text) {
    // A macro Zabbix could not expand is sent as written ("{TRIGGER.DESCRIPTION}"): it means empty.
    return typeof text !== "string" || /^\{[A-Z0-9.]+\}$/.test(text) ? "" : text;
}

function edgewatchPayload(params) {
    var payload = {};
    for (var i = 0; i < EDGEWATCH_FIELDS.length; i++) {
        payload[EDGEWATCH_FIELDS[i]] = unexpanded(params[EDGEWATCH_FIELDS[i]]);
    }
    if (payload.event_update_status === "") {
        payload.event_update_status = "0";
    }
    var tags = unexpanded(params.event_tags);
    payload.event_tags = tags === "" ? [] : JSON.parse(tags);
    payload.event_time = Math.floor(Date.now() / 1000);
    return payload;
}

var params = JSON.parse(value);
if (!params.edgewatch_url || !params.edgewatch_token) {
    throw "edgewatch: the media type needs the parameters edgewatch_url and edgewatch_token";
}
var url = params.edgewatch_url.replace(/\/+$/, "") + "/api/v1/ingest/zabbix";
var request = new HttpRequest();
request.addHeader("Content-Type: application/json");
request.addHeader("Authorization: Bearer " + params.edgewatch_token);
var answer = request.post(url, JSON.stringify(edgewatchPayload(params)));
var status = request.getStatus();
if (status !== 200) {
    Zabbix.log(3, "[edgewatch] " + url + " answered " + status + ": " + answer);
    throw "edgewatch answered " + status + ": " + answer;
}
return "OK";
