import { Body, Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { ApiRefusals } from '../common/openapi';
import { CreateSigningKeyDto, SigningKeyDto } from './dto/signing-key.dto';
import { SigningKeysService } from './signing-keys.service';

@ApiTags('signing keys')
@ApiRefusals()
@Controller('api/v1/clusters/:clusterId/signing-keys')
export class SigningKeysController {
  constructor(private readonly keys: SigningKeysService) {}

  @Post()
  @RequireRole('admin')
  @Audited('signing-key.create', 'signing-key')
  @ApiOperation({
    summary: "Register a public key trusted to sign the cluster's packages (Ed25519, PEM)",
    description:
      "Uploads signed by this key are accepted, and the cluster's agents are sent the key on their next heartbeat. 400 for a key that is not an Ed25519 public key in PEM; 409 SIGNING_KEY_NAME_TAKEN or SIGNING_KEY_EXISTS (the same key under another name).",
  })
  @ApiCreatedResponse({ type: SigningKeyDto })
  create(
    @IdParam('clusterId') clusterId: string,
    @Body() body: CreateSigningKeyDto,
    @CallerOrigin() origin: Origin,
  ): Promise<SigningKeyDto> {
    return this.keys.create(clusterId, body, origin);
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: "List the cluster's signing keys, oldest first" })
  @ApiOkResponse({ type: [SigningKeyDto] })
  list(@IdParam('clusterId') clusterId: string): Promise<SigningKeyDto[]> {
    return this.keys.list(clusterId);
  }

  @Delete(':keyId')
  @HttpCode(204)
  @RequireRole('admin')
  @Audited('signing-key.delete', 'signing-key', 'keyId')
  @ApiOperation({
    summary: 'Delete a signing key',
    description:
      'Packages it signed stay signed (their signingKey keeps its name), but agents no longer trust it: they refuse to install a package signed only by it. 409 LAST_SIGNING_KEY while the cluster requires signed packages and this is its last key.',
  })
  @ApiNoContentResponse({ description: 'Deleted.' })
  delete(
    @IdParam('clusterId') clusterId: string,
    @IdParam('keyId') keyId: string,
    @CallerOrigin() origin: Origin,
  ): Promise<void> {
    return this.keys.delete(clusterId, keyId, origin);
  }
}
