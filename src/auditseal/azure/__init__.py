"""Azure-specific features beyond the storage adapter: prove and manage immutability.

``tamper`` is the storage probe's back door on Azure Blob Storage; ``management`` wraps
azure-mgmt-storage's container immutability calls (time-based retention, legal holds);
``status`` reports what protects a log's containers and what falls short. These modules
import the Azure SDKs, so nothing outside the Azure code imports this package eagerly.
"""
