"""Agentless devices polled by this agent (SNMP, ICMP) and published under their own device ids.

`config` parses `[[agent.proxy]]`; `state` decides, per device, what to publish (pure); `snmp`
and `poller` talk to the network. Only `config` is imported when no proxied device is configured.
"""
