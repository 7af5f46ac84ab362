"""The Azure adapter: reads an Automation account and its Log Analytics workspace.

- ``client``: ``AzureClient``, the only module in the project that imports an Azure SDK, and the
  mapping of SDK exceptions to ours;
- ``connection``: ``ConnectionSettings``, connection files, timeouts/CA/retry arguments;
- ``queries``: the KQL and OData ``$filter`` text (values enter only through the literal builders);
- ``parse``: SDK/wire results -> the frozen records of ``records``;
- ``errors``: ``AzureError`` / ``AzureTransientError`` and the SDK-free facts the mapping reads.

Nothing is re-exported here, so importing records, errors or connection settings never loads the
SDK: import ``AzureClient`` from ``workers.azure.client`` where a poll actually runs.
"""
